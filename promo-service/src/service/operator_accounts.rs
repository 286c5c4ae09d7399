//! `OperatorAccounts`: an operator changes their own password; an owner changes another
//! operator's role or deactivates them. The rules (who may, the last active owner) are checked
//! here and in `repo::operators::change_account`, never only in the console.

use iafactory::proto::iafactory::promo::v1 as pb;
use pb::operator_accounts_server::OperatorAccounts;
use tonic::{Request, Response, Status};

use super::operators::{
    OPERATOR_SESSION_METADATA, bad_credentials, blocking, hash_password, operator_pb,
    session_refused, verify_password,
};
use super::{PromoApi, metadata_str};
use crate::audit::Audit;
use crate::clock::rfc3339;
use crate::domain::operator::{
    self, Actor, FAILED_SIGN_INS_PER_EMAIL, FAILED_SIGN_INS_PER_IP, Role,
};
use crate::error::{PromoError, Result};
use crate::repo::operators::{self as ops, AccountChange, OperatorRow};
use crate::secrets;

fn account_pb(o: &OperatorRow) -> pb::OperatorAccount {
    pb::OperatorAccount {
        operator: Some(operator_pb(o)),
        active: o.deactivated_at.is_none(),
        deactivated_at: o.deactivated_at.map(rfc3339).unwrap_or_default(),
    }
}

fn operator_id(raw: &str) -> Result<&str> {
    let id = raw.trim();
    if id.starts_with("op_")
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        Ok(id)
    } else {
        Err(PromoError::InvalidArgument(
            "operator_id s'écrit op_…".into(),
        ))
    }
}

impl PromoApi {
    async fn change_own_password(
        &self,
        req: Request<pb::ChangeOwnPasswordRequest>,
    ) -> Result<pb::ChangeOwnPasswordResponse> {
        let actor = self.operator_actor(&req, true).await?;
        let Actor::Operator { id, email, .. } = &actor else {
            return Err(PromoError::InvalidArgument(
                "le jeton d'administration n'a pas de mot de passe : connectez-vous en opérateur"
                    .into(),
            ));
        };
        let session_hash = metadata_str(&req, OPERATOR_SESSION_METADATA)
            .map(secrets::hash_token)
            .ok_or_else(session_refused)?;
        let body = req.into_inner();
        let new_password = operator::new_password(&body.new_password)?.to_owned();
        if body.current_password.len() > 4 * operator::PASSWORD_MAX {
            return Err(bad_credentials());
        }
        let now = self.clock.now_ms();
        // Guessing the current password through this RPC is charged to the same budget as
        // sign-ins for that e-mail.
        let email_hash = secrets::hash_token(email);
        if let Some(wait) = ops::sign_in_blocked(
            &self.db,
            &email_hash,
            None,
            (FAILED_SIGN_INS_PER_EMAIL, FAILED_SIGN_INS_PER_IP),
            now,
        )
        .await?
        {
            return Err(PromoError::SignInLocked(wait));
        }
        let op = ops::find_operator(&self.db, id)
            .await?
            .ok_or_else(session_refused)?;
        let (hash, current) = (op.password_hash.clone(), body.current_password);
        let new_hash = blocking(move || {
            if verify_password(&current, &hash) {
                hash_password(&new_password).map(Some)
            } else {
                Ok(None)
            }
        })
        .await??;
        let Some(new_hash) = new_hash else {
            ops::record_sign_in_failure(&self.db, &email_hash, None, now).await?;
            return Err(PromoError::Unauthenticated("mot de passe actuel incorrect"));
        };
        let ended = ops::change_password(
            &self.db,
            id,
            &new_hash,
            &session_hash,
            &Audit::new(&actor, "operator.password", email.clone()),
            now,
        )
        .await?;
        tracing::info!(operator = %id, sessions_ended = ended, "operator password changed");
        Ok(pb::ChangeOwnPasswordResponse {
            sessions_ended: ended,
        })
    }

    async fn change_operator_account(
        &self,
        actor: &Actor,
        raw_id: &str,
        change: AccountChange,
    ) -> Result<pb::OperatorAccount> {
        let id = operator_id(raw_id)?;
        let target = ops::find_operator(&self.db, id)
            .await?
            .ok_or_else(|| PromoError::NotFound(format!("opérateur inconnu : {id}")))?;
        let action = match change {
            AccountChange::Role(_) => "operator.role",
            AccountChange::Active(true) => "operator.reactivate",
            AccountChange::Active(false) => "operator.deactivate",
        };
        let row = ops::change_account(
            &self.db,
            id,
            change,
            &Audit::new(actor, action, target.email.clone()),
            self.clock.now_ms(),
        )
        .await?;
        tracing::info!(operator = %id, action, "operator account changed");
        Ok(account_pb(&row))
    }
}

#[tonic::async_trait]
impl OperatorAccounts for PromoApi {
    async fn change_own_password(
        &self,
        req: Request<pb::ChangeOwnPasswordRequest>,
    ) -> std::result::Result<Response<pb::ChangeOwnPasswordResponse>, Status> {
        Ok(Response::new(
            PromoApi::change_own_password(self, req).await?,
        ))
    }

    async fn set_operator_role(
        &self,
        req: Request<pb::SetOperatorRoleRequest>,
    ) -> std::result::Result<Response<pb::OperatorAccount>, Status> {
        let actor = self.owner(&req).await?;
        let req = req.into_inner();
        let role = match pb::OperatorRole::try_from(req.role) {
            Ok(pb::OperatorRole::Owner) => Role::Owner,
            Ok(pb::OperatorRole::Support) => Role::Support,
            _ => {
                return Err(PromoError::InvalidArgument(
                    "role vaut OPERATOR_ROLE_OWNER ou OPERATOR_ROLE_SUPPORT".into(),
                )
                .into());
            }
        };
        Ok(Response::new(
            self.change_operator_account(&actor, &req.operator_id, AccountChange::Role(role))
                .await?,
        ))
    }

    async fn set_operator_active(
        &self,
        req: Request<pb::SetOperatorActiveRequest>,
    ) -> std::result::Result<Response<pb::OperatorAccount>, Status> {
        let actor = self.owner(&req).await?;
        let req = req.into_inner();
        Ok(Response::new(
            self.change_operator_account(
                &actor,
                &req.operator_id,
                AccountChange::Active(req.active),
            )
            .await?,
        ))
    }

    async fn list_operator_accounts(
        &self,
        req: Request<pb::ListOperatorAccountsRequest>,
    ) -> std::result::Result<Response<pb::ListOperatorAccountsResponse>, Status> {
        self.operator_actor(&req, false).await?;
        let list = ops::list_operators(&self.db).await?;
        Ok(Response::new(pb::ListOperatorAccountsResponse {
            operators: list.iter().map(account_pb).collect(),
        }))
    }
}
