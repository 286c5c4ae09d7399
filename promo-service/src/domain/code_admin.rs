//! What an operator may create or change on a promo code, and the checks that guard it: name
//! shape, bounds on the limit, the duration and the description, discounts per package, and a
//! validity window that ends after it starts. The handlers only map request fields onto these;
//! whether each named package exists needs a lookup and stays with the handler.

use std::collections::HashMap;

use super::code::{CodeName, CodeRules, Discounts, Percent, package_id};
use crate::clock;
use crate::error::{PromoError, Result};

const MAX_DESCRIPTION_LEN: usize = 500;
const MAX_REDEMPTIONS_LIMIT: u32 = 1_000_000;
const MAX_DISCOUNT_ENTRIES: usize = 64;

/// A code to create, already validated.
#[derive(Debug, Clone)]
pub struct NewCode {
    pub code: CodeName,
    pub description: String,
    pub max_redemptions: Option<u32>,
    pub duration_months: u32,
    pub valid_from: i64,
    pub valid_until: Option<i64>,
    pub discounts: Discounts,
}

/// A code to create, as the operator sent it.
#[derive(Debug, Clone, Copy)]
pub struct NewCodeRequest<'a> {
    pub code: &'a str,
    pub description: &'a str,
    pub max_redemptions: Option<u32>,
    pub duration_months: u32,
    /// RFC 3339; empty: from `now`.
    pub valid_from: &'a str,
    /// RFC 3339; empty: no end.
    pub valid_until: &'a str,
    pub discounts: &'a HashMap<String, u32>,
}

impl NewCode {
    /// Checks every field; `now` (ms) is the start when none is given.
    pub fn parse(req: NewCodeRequest<'_>, now: i64) -> Result<NewCode> {
        let code = CodeName::new_code(req.code)?;
        let description = check_description(req.description)?;
        let max_redemptions = req.max_redemptions.map(check_max).transpose()?;
        let duration_months = check_duration(req.duration_months)?;
        let valid_from = if req.valid_from.trim().is_empty() {
            now
        } else {
            clock::parse_rfc3339("valid_from", req.valid_from)?
        };
        let valid_until = if req.valid_until.trim().is_empty() {
            None
        } else {
            Some(clock::parse_rfc3339("valid_until", req.valid_until)?)
        };
        if valid_until.is_some_and(|u| u <= valid_from) {
            return Err(PromoError::InvalidArgument(
                "valid_until doit être postérieur à valid_from".into(),
            ));
        }
        if req.discounts.is_empty() {
            return Err(PromoError::InvalidArgument(
                "discounts doit donner la réduction d'au moins un forfait".into(),
            ));
        }
        let discounts = check_discounts(req.discounts)?;
        Ok(NewCode {
            code,
            description,
            max_redemptions,
            duration_months,
            valid_from,
            valid_until,
            discounts,
        })
    }
}

/// A validated change to a code; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct CodeChange {
    pub active: Option<bool>,
    /// `Some(None)` removes the limit.
    pub max_redemptions: Option<Option<u32>>,
    pub description: Option<String>,
    pub valid_from: Option<i64>,
    /// `Some(None)` removes the end date.
    pub valid_until: Option<Option<i64>>,
    pub duration_months: Option<u32>,
    pub discounts: DiscountChange,
}

/// How an update changes the discount table: a merge, never a silent replacement — the listed
/// packages get their new percentage, the removed ones lose theirs, the others keep theirs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscountChange {
    pub set: Discounts,
    pub remove: Vec<String>,
}

impl DiscountChange {
    /// Checks the packages to set and to remove: ids well-formed, not repeated, none both set
    /// and removed (which of the two was meant cannot be guessed).
    pub fn parse(set: &HashMap<String, u32>, remove: &[String]) -> Result<DiscountChange> {
        let set = check_discounts(set)?;
        if remove.len() > MAX_DISCOUNT_ENTRIES {
            return Err(PromoError::InvalidArgument(
                "trop de forfaits dans remove_discounts".into(),
            ));
        }
        let mut removed: Vec<String> = Vec::with_capacity(remove.len());
        for raw in remove {
            let id = package_id(raw)?;
            if removed.contains(&id) {
                return Err(PromoError::InvalidArgument(format!(
                    "forfait {id} répété dans remove_discounts"
                )));
            }
            if set.iter().any(|(p, _)| p == &id) {
                return Err(PromoError::InvalidArgument(format!(
                    "le forfait {id} ne peut pas être à la fois dans discounts et remove_discounts"
                )));
            }
            removed.push(id);
        }
        removed.sort();
        Ok(DiscountChange {
            set,
            remove: removed,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }
}

impl CodeChange {
    /// The validity window once this change is applied to `current`, if it still ends after it
    /// starts. Checked against the row read in the update's transaction, so a concurrent change
    /// of the other end cannot slip past.
    pub fn window(&self, current: &CodeRules) -> Result<(i64, Option<i64>)> {
        let valid_from = self
            .valid_from
            .unwrap_or_else(|| current.valid_from.timestamp_millis());
        let valid_until = self
            .valid_until
            .unwrap_or_else(|| current.valid_until.map(|d| d.timestamp_millis()));
        if valid_until.is_some_and(|u| u <= valid_from) {
            return Err(PromoError::InvalidArgument(
                "la fin de validité doit suivre le début".into(),
            ));
        }
        Ok((valid_from, valid_until))
    }
}

/// The change of limit an update asks for: `unlimited` removes it, `max_redemptions` sets it,
/// both at once is a contradiction.
pub fn max_change(unlimited: Option<bool>, max: Option<u32>) -> Result<Option<Option<u32>>> {
    if unlimited == Some(true) && max.is_some() {
        return Err(PromoError::InvalidArgument(
            "unlimited et max_redemptions s'excluent".into(),
        ));
    }
    Ok(match (unlimited, max) {
        (Some(true), _) => Some(None),
        (_, Some(max)) => Some(Some(check_max(max)?)),
        _ => None,
    })
}

/// The change of end date an update asks for: absent keeps it, empty removes it.
pub fn valid_until_change(raw: Option<&str>) -> Result<Option<Option<i64>>> {
    Ok(match raw {
        None => None,
        Some(v) if v.trim().is_empty() => Some(None),
        Some(v) => Some(Some(clock::parse_rfc3339("valid_until", v)?)),
    })
}

pub fn check_description(d: &str) -> Result<String> {
    if d.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(PromoError::InvalidArgument(format!(
            "la description dépasse {MAX_DESCRIPTION_LEN} caractères"
        )));
    }
    Ok(d.trim().to_owned())
}

pub fn check_max(max: u32) -> Result<u32> {
    if (1..=MAX_REDEMPTIONS_LIMIT).contains(&max) {
        Ok(max)
    } else {
        Err(PromoError::InvalidArgument(format!(
            "max_redemptions doit être entre 1 et {MAX_REDEMPTIONS_LIMIT} (reçu {max})"
        )))
    }
}

pub fn check_duration(months: u32) -> Result<u32> {
    if (1..=120).contains(&months) {
        Ok(months)
    } else {
        Err(PromoError::InvalidArgument(format!(
            "duration_months doit être entre 1 et 120 (reçu {months})"
        )))
    }
}

/// Discounts per package id: ids well-formed and not repeated, percents in range, sorted.
pub fn check_discounts(raw: &HashMap<String, u32>) -> Result<Discounts> {
    if raw.len() > MAX_DISCOUNT_ENTRIES {
        return Err(PromoError::InvalidArgument(
            "trop de forfaits dans discounts".into(),
        ));
    }
    let mut out = Vec::with_capacity(raw.len());
    for (package, pct) in raw {
        let id = package_id(package)?;
        if out.iter().any(|(p, _): &(String, Percent)| p == &id) {
            return Err(PromoError::InvalidArgument(format!("forfait {id} répété")));
        }
        out.push((id, Percent::new(*pct)?));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discounts(entries: &[(&str, u32)]) -> HashMap<String, u32> {
        entries.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    fn request<'a>(discounts: &'a HashMap<String, u32>) -> NewCodeRequest<'a> {
        NewCodeRequest {
            code: " summer-25 ",
            description: " Été ",
            max_redemptions: Some(100),
            duration_months: 3,
            valid_from: "",
            valid_until: "",
            discounts,
        }
    }

    #[test]
    fn a_discount_change_is_a_checked_merge() {
        let set = discounts(&[("Premium", 40)]);
        let c = DiscountChange::parse(&set, &["DEV".into()]).unwrap();
        assert_eq!(
            c.set,
            vec![("premium".to_owned(), Percent::new(40).unwrap())]
        );
        assert_eq!(c.remove, vec!["dev".to_owned()]);
        assert!(DiscountChange::parse(&set, &["premium".into()]).is_err());
        assert!(DiscountChange::parse(&HashMap::new(), &["dev".into(), "Dev".into()]).is_err());
        assert!(DiscountChange::parse(&HashMap::new(), &["not an id!".into()]).is_err());
        assert!(
            DiscountChange::parse(&HashMap::new(), &[])
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_new_code_starts_now_and_sorts_its_discounts() {
        let d = discounts(&[("Dev", 30), ("starter", 20)]);
        let new = NewCode::parse(request(&d), 1_000).ok();
        assert_eq!(new.as_ref().map(|n| n.code.as_str()), Some("SUMMER-25"));
        assert_eq!(new.as_ref().map(|n| n.description.as_str()), Some("Été"));
        assert_eq!(new.as_ref().map(|n| n.valid_from), Some(1_000));
        let ids: Vec<String> = new
            .map(|n| n.discounts.into_iter().map(|(id, _)| id).collect())
            .unwrap_or_default();
        assert_eq!(ids, ["dev", "starter"]);
    }

    #[test]
    fn a_new_code_is_refused_when_a_field_is_out_of_bounds() {
        let ok = discounts(&[("dev", 30)]);
        let empty = HashMap::new();
        let repeated = discounts(&[("dev", 30), ("DEV", 20)]);
        let bad = [
            NewCodeRequest {
                max_redemptions: Some(0),
                ..request(&ok)
            },
            NewCodeRequest {
                duration_months: 121,
                ..request(&ok)
            },
            NewCodeRequest {
                valid_from: "demain",
                ..request(&ok)
            },
            NewCodeRequest {
                valid_from: "2026-02-01T00:00:00Z",
                valid_until: "2026-01-01T00:00:00Z",
                ..request(&ok)
            },
            request(&empty),
            request(&repeated),
        ];
        for req in bad {
            assert!(
                matches!(NewCode::parse(req, 0), Err(PromoError::InvalidArgument(_))),
                "{req:?}"
            );
        }
    }

    #[test]
    fn a_change_keeps_the_window_ordered() {
        let current = CodeRules {
            active: true,
            max_redemptions: None,
            used: 0,
            valid_from: chrono::DateTime::from_timestamp_millis(1_000).unwrap_or_default(),
            valid_until: None,
            duration_months: 6,
            discounts: Vec::new(),
        };
        let until = |ms| CodeChange {
            valid_until: Some(Some(ms)),
            ..CodeChange::default()
        };
        assert_eq!(
            until(2_000).window(&current).ok(),
            Some((1_000, Some(2_000)))
        );
        assert!(until(1_000).window(&current).is_err());
        assert_eq!(max_change(Some(true), None).ok(), Some(Some(None)));
        assert!(max_change(Some(true), Some(5)).is_err());
        assert_eq!(valid_until_change(Some(" ")).ok(), Some(Some(None)));
    }
}
