//! The business rules, without I/O: e-mail and code normalisation, prices and rounding, discount
//! periods, why a code is or is not usable, and what an operator may create or change. Repositories
//! and handlers call these; the unit tests in each file pin them down. Invariant: an e-mail or a
//! code exists in the rest of the service only in the canonical form built here ([`Email`],
//! [`CodeName`]), so uniqueness checked on that form is uniqueness of the mailbox or code.

pub mod account;
pub mod billing;
pub mod campaign;
pub mod code;
pub mod code_admin;
pub mod contacts_csv;
pub mod email;
pub mod lang;
pub mod mail_token;
pub mod operator;

pub use code::{
    CodeName, CodeRules, Discounts, Percent, discount_end, discount_message, package_id,
    percent_filled,
};
pub use code_admin::{CodeChange, NewCode, NewCodeRequest};
pub use email::Email;
pub use lang::Lang;
