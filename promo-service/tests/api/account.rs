//! Customer accounts over real gRPC on both backends: sign-in by one-time link (captured from
//! the outbox, and once through a real SMTP server), sessions and CSRF, the security cases of the
//! issue (link reuse, expiry, another address, fixation, CSRF, another customer's key, rate
//! limits, unknown addresses), keys with rotation grace, recovery after an operator revocation,
//! package changes across a period boundary, cancellation, and notices. Time is moved with the
//! service's manual clock, never waited for.

use std::time::Duration;

use iafactory::proto::iafactory::promo::v1 as pb;
use pb::promo_service_client::PromoServiceClient;
use promo_service::clock::Clock;
use tonic::transport::Channel;
use tonic::{Code, Request};

use crate::helpers::*;
use iafactory_testkit::smtp_sink::SmtpSink;

const MINUTE: Duration = Duration::from_secs(60);

/// A service with a manual clock standing at the real now (signups still use the system time).
async fn spawn(db: &TestDb) -> (TestApp, Clock) {
    let clock = Clock::manual(iafactory::db::now_millis());
    let c = clock.clone();
    let app = TestApp::spawn_with(db, move |config| {
        config.clock = c;
        config.account_jobs_interval = Duration::from_millis(100);
    })
    .await;
    (app, clock)
}

fn from_ip<T>(msg: T, ip: &str) -> Request<T> {
    let mut req = internal(msg);
    req.metadata_mut()
        .insert("x-iaf-client-ip", ip.parse().unwrap());
    req
}

fn link_req(email: &str) -> pb::RequestSignInLinkRequest {
    pb::RequestSignInLinkRequest {
        email: email.into(),
    }
}

/// A request in a session; `csrf` for state-changing calls.
pub(crate) fn s<T>(msg: T, session: &str, csrf: Option<&str>) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut()
        .insert("x-iaf-session", session.parse().unwrap());
    if let Some(csrf) = csrf {
        req.metadata_mut()
            .insert("x-iaf-csrf", csrf.parse().unwrap());
    }
    req
}

/// The tokens of the sign-in links in the outbox (newest first), read from the stored payloads
/// of e-mails not yet sent (no SMTP relay in these tests).
async fn link_tokens(db: &TestDb, email: &str) -> Vec<String> {
    db.query_strings(&format!(
        "SELECT payload FROM outbox WHERE kind = 'sign_in_link' AND recipient = '{email}' \
         ORDER BY created_at DESC, id DESC"
    ))
    .await
    .iter()
    .map(|p| {
        let v: serde_json::Value = serde_json::from_str(p).unwrap();
        let link = v["link"].as_str().unwrap();
        link.split("#jeton=").nth(1).unwrap().to_owned()
    })
    .collect()
}

pub(crate) struct Signed {
    pub(crate) session: String,
    pub(crate) csrf: String,
}

/// Asks for a link, takes it from the outbox, opens a session.
pub(crate) async fn sign_in(
    c: &mut PromoServiceClient<Channel>,
    db: &TestDb,
    email: &str,
) -> Signed {
    c.request_sign_in_link(internal(link_req(email)))
        .await
        .unwrap();
    let token = link_tokens(db, email).await.remove(0);
    let grant = c
        .consume_sign_in_link(pb::ConsumeSignInLinkRequest { token })
        .await
        .unwrap()
        .into_inner();
    Signed {
        session: grant.session_token,
        csrf: grant.csrf_token,
    }
}

pub(crate) async fn auth(
    c: &mut PromoServiceClient<Channel>,
    key: &str,
) -> Result<pb::AuthenticateKeyResponse, tonic::Status> {
    c.authenticate_key(internal(pb::AuthenticateKeyRequest {
        api_key: key.into(),
    }))
    .await
    .map(|r| r.into_inner())
}

async fn account(c: &mut PromoServiceClient<Channel>, who: &Signed) -> pb::Account {
    c.get_account(s(pb::GetAccountRequest {}, &who.session, None))
        .await
        .unwrap()
        .into_inner()
}

async fn mail_kinds(db: &TestDb, email: &str) -> Vec<String> {
    db.query_strings(&format!(
        "SELECT kind FROM outbox WHERE recipient = '{email}' ORDER BY created_at, id"
    ))
    .await
}

async fn link_signs_in_once_and_sessions_end(backend: Backend) {
    let db = test_db(backend).await;
    let (app, clock) = spawn(&db).await;
    let mut c = app.client.clone();
    c.signup(signup_req("nadia@exemple.dz", "dev", "LAUNCH30"))
        .await
        .unwrap();

    c.request_sign_in_link(internal(link_req(" Nadia@Exemple.dz ")))
        .await
        .unwrap();
    let token = link_tokens(&db, "nadia@exemple.dz").await.remove(0);
    // Only the hash is stored.
    assert!(
        db.query_strings("SELECT token_hash FROM sign_in_links")
            .await
            .iter()
            .all(|h| h != &token && h.len() == 64)
    );

    let grant = c
        .consume_sign_in_link(pb::ConsumeSignInLinkRequest {
            token: token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let me = Signed {
        session: grant.session_token.clone(),
        csrf: grant.csrf_token.clone(),
    };
    let acc = account(&mut c, &me).await;
    assert_eq!(acc.email, "nadia@exemple.dz");
    assert_eq!(acc.package.as_ref().unwrap().id, "dev");
    assert_eq!(
        (acc.price_dzd, acc.base_price_dzd, acc.discount_percent),
        (10_050, 15_000, 33)
    );
    assert!(!acc.discount_ends_at.is_empty() && !acc.period_end.is_empty());
    assert_eq!(acc.csrf_token, me.csrf);
    assert!(
        db.query_strings("SELECT token_hash FROM sessions")
            .await
            .iter()
            .all(|h| h != &me.session)
    );

    // Link reuse: refused.
    assert_status(
        c.consume_sign_in_link(pb::ConsumeSignInLinkRequest { token })
            .await,
        Code::Unauthenticated,
        "unauthenticated",
    );
    // A session the caller made up, or none: refused.
    for fake in [promo_service::secrets::new_token(), String::new()] {
        let mut req = Request::new(pb::GetAccountRequest {});
        if !fake.is_empty() {
            req.metadata_mut()
                .insert("x-iaf-session", fake.parse().unwrap());
        }
        assert_status(
            c.get_account(req).await,
            Code::Unauthenticated,
            "unauthenticated",
        );
    }

    // Expired link: 15 minutes.
    c.request_sign_in_link(internal(link_req("nadia@exemple.dz")))
        .await
        .unwrap();
    let late = link_tokens(&db, "nadia@exemple.dz").await.remove(0);
    clock.advance(16 * MINUTE);
    assert_status(
        c.consume_sign_in_link(pb::ConsumeSignInLinkRequest { token: late })
            .await,
        Code::Unauthenticated,
        "unauthenticated",
    );

    // Idle expiry: used within 2 hours the session lives on, after 2 idle hours it ends.
    clock.advance(100 * MINUTE);
    account(&mut c, &me).await;
    clock.advance(121 * MINUTE);
    assert_status(
        c.get_account(s(pb::GetAccountRequest {}, &me.session, None))
            .await,
        Code::Unauthenticated,
        "unauthenticated",
    );

    // Absolute expiry: used every 100 minutes, the session still ends after 7 days.
    let other = sign_in(&mut c, &db, "nadia@exemple.dz").await;
    let mut alive = 0;
    for _ in 0..110 {
        clock.advance(100 * MINUTE);
        if c.get_account(s(pb::GetAccountRequest {}, &other.session, None))
            .await
            .is_ok()
        {
            alive += 1;
        }
    }
    assert_eq!(alive, 7 * 24 * 60 / 100, "alive for 7 days, then not");
    app.stop().await.unwrap();
}

async fn unknown_addresses_and_rate_limits(backend: Backend) {
    let db = test_db(backend).await;
    let (app, clock) = spawn(&db).await;
    let mut c = app.client.clone();
    c.signup(signup_req("known@exemple.dz", "starter", ""))
        .await
        .unwrap();

    // Without the internal token: refused (the client IP it carries must be trusted).
    assert_status(
        c.request_sign_in_link(link_req("known@exemple.dz")).await,
        Code::PermissionDenied,
        "permission_denied",
    );

    let known = c
        .request_sign_in_link(from_ip(link_req("known@exemple.dz"), "10.0.0.1"))
        .await
        .unwrap();
    let unknown = c
        .request_sign_in_link(from_ip(link_req("nobody@exemple.dz"), "10.0.0.2"))
        .await
        .unwrap();
    assert_eq!(known.get_ref(), unknown.get_ref());
    let (mk, mu) = (known.metadata().clone(), unknown.metadata().clone());
    let keys = |m: &tonic::metadata::MetadataMap| {
        let mut k: Vec<String> = m
            .keys()
            .map(|k| format!("{k:?}"))
            .filter(|k| !k.contains("date"))
            .collect();
        k.sort();
        k
    };
    assert_eq!(keys(&mk), keys(&mu), "same metadata for known and unknown");
    assert_eq!(
        db.count("sign_in_links").await,
        1,
        "no link for an unknown address"
    );
    assert_eq!(mail_kinds(&db, "nobody@exemple.dz").await.len(), 0);

    // Per address: 5 an hour, then 429 — for a known and an unknown address alike.
    for email in ["known@exemple.dz", "nobody@exemple.dz"] {
        for _ in 1..5 {
            c.request_sign_in_link(from_ip(link_req(email), "10.0.1.1"))
                .await
                .unwrap();
        }
        let refused = c
            .request_sign_in_link(from_ip(link_req(email), "10.0.1.2"))
            .await;
        assert_status(
            refused.as_ref().map(|_| ()).map_err(Clone::clone),
            Code::ResourceExhausted,
            "rate_limited",
        );
        assert!(refused.unwrap_err().metadata().get("retry-after").is_some());
    }
    assert_eq!(mail_kinds(&db, "known@exemple.dz").await.len(), 1 + 5);
    // The window slides: an hour later the address may ask again.
    clock.advance(61 * MINUTE);
    c.request_sign_in_link(from_ip(link_req("known@exemple.dz"), "10.0.1.3"))
        .await
        .unwrap();

    // Per IP: 20 an hour across addresses; another IP is not affected.
    for i in 0..20 {
        c.request_sign_in_link(from_ip(link_req(&format!("p{i}@exemple.dz")), "10.9.9.9"))
            .await
            .unwrap();
    }
    assert_status(
        c.request_sign_in_link(from_ip(link_req("p99@exemple.dz"), "10.9.9.9"))
            .await,
        Code::ResourceExhausted,
        "rate_limited",
    );
    c.request_sign_in_link(from_ip(link_req("p99@exemple.dz"), "10.9.9.10"))
        .await
        .unwrap();
    // A malformed address is a clear 400, before any counting.
    assert_status(
        c.request_sign_in_link(internal(link_req("pas-une-adresse")))
            .await,
        Code::InvalidArgument,
        "invalid_email",
    );
    app.stop().await.unwrap();
}

async fn links_sessions_and_keys_belong_to_one_customer(backend: Backend) {
    let db = test_db(backend).await;
    let (app, _clock) = spawn(&db).await;
    let mut c = app.client.clone();
    let a = c
        .signup(signup_req("a@exemple.dz", "dev", ""))
        .await
        .unwrap()
        .into_inner();
    let b = c
        .signup(signup_req("b@exemple.dz", "dev", ""))
        .await
        .unwrap()
        .into_inner();
    // A link asked for A goes to A's mailbox and opens A's account only.
    let sa = sign_in(&mut c, &db, "a@exemple.dz").await;
    assert_eq!(account(&mut c, &sa).await.user_id, a.user_id);
    assert!(link_tokens(&db, "b@exemple.dz").await.is_empty());
    let sb = sign_in(&mut c, &db, "b@exemple.dz").await;
    assert_eq!(account(&mut c, &sb).await.user_id, b.user_id);
    assert_ne!(sa.session, sb.session);

    // Another customer's key id: refused exactly like an unknown id, and the key keeps working.
    let b_keys = c
        .list_keys(s(pb::ListKeysRequest {}, &sb.session, None))
        .await
        .unwrap()
        .into_inner()
        .keys;
    let b_key = b_keys[0].id.clone();
    assert_status(
        c.revoke_key(s(
            pb::RevokeKeyRequest {
                key_id: b_key.clone(),
            },
            &sa.session,
            Some(&sa.csrf),
        ))
        .await,
        Code::NotFound,
        "not_found",
    );
    assert_status(
        c.rotate_key(s(
            pb::RotateKeyRequest {
                key_id: b_key.clone(),
                grace_seconds: 0,
            },
            &sa.session,
            Some(&sa.csrf),
        ))
        .await,
        Code::NotFound,
        "not_found",
    );
    assert_status(
        c.revoke_key(s(
            pb::RevokeKeyRequest {
                key_id: "key_nope".into(),
            },
            &sa.session,
            Some(&sa.csrf),
        ))
        .await,
        Code::NotFound,
        "not_found",
    );
    auth(&mut c, &b.api_key).await.unwrap();
    // A's CSRF token does not open B's session (it is derived from the session).
    assert_status(
        c.create_key(s(
            pb::CreateKeyRequest { name: "x".into() },
            &sb.session,
            Some(&sa.csrf),
        ))
        .await,
        Code::PermissionDenied,
        "csrf_failed",
    );

    // CSRF: state-changing calls without the token, or with a wrong one, are refused and
    // change nothing.
    for csrf in [None, Some("faux")] {
        assert_status(
            c.create_key(s(
                pb::CreateKeyRequest { name: "x".into() },
                &sa.session,
                csrf,
            ))
            .await,
            Code::PermissionDenied,
            "csrf_failed",
        );
        assert_status(
            c.sign_out(s(
                pb::SignOutRequest { everywhere: true },
                &sa.session,
                csrf,
            ))
            .await,
            Code::PermissionDenied,
            "csrf_failed",
        );
        assert_status(
            c.change_package(s(
                pb::ChangePackageRequest {
                    package: "business".into(),
                },
                &sa.session,
                csrf,
            ))
            .await,
            Code::PermissionDenied,
            "csrf_failed",
        );
    }
    assert_eq!(db.count("api_keys").await, 2);
    assert_eq!(account(&mut c, &sa).await.package.unwrap().id, "dev");

    // Sign out everywhere ends every session of A, none of B's.
    let sa2 = sign_in(&mut c, &db, "a@exemple.dz").await;
    let out = c
        .sign_out(s(
            pb::SignOutRequest { everywhere: true },
            &sa.session,
            Some(&sa.csrf),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(out.ended, 2);
    for gone in [&sa, &sa2] {
        assert_status(
            c.get_account(s(pb::GetAccountRequest {}, &gone.session, None))
                .await,
            Code::Unauthenticated,
            "unauthenticated",
        );
    }
    account(&mut c, &sb).await;
    // Sign out here only.
    let sb2 = sign_in(&mut c, &db, "b@exemple.dz").await;
    c.sign_out(s(
        pb::SignOutRequest { everywhere: false },
        &sb2.session,
        Some(&sb2.csrf),
    ))
    .await
    .unwrap();
    account(&mut c, &sb).await;
    app.stop().await.unwrap();
}

async fn keys_are_created_rotated_and_revoked(backend: Backend) {
    let db = test_db(backend).await;
    let (app, clock) = spawn(&db).await;
    let mut c = app.client.clone();
    let first = c
        .signup(signup_req("k@exemple.dz", "dev", ""))
        .await
        .unwrap()
        .into_inner();
    let me = sign_in(&mut c, &db, "k@exemple.dz").await;
    let created = c
        .create_key(s(
            pb::CreateKeyRequest {
                name: " production ".into(),
            },
            &me.session,
            Some(&me.csrf),
        ))
        .await
        .unwrap()
        .into_inner();
    let info = created.key.clone().unwrap();
    assert_eq!(info.name, "production");
    assert_eq!(info.status(), pb::KeyStatus::Active);
    assert!(created.api_key.starts_with(&info.prefix));
    let owner = auth(&mut c, &created.api_key).await.unwrap();
    assert_eq!(
        (owner.user_id.as_str(), owner.key_id.as_str()),
        (first.user_id.as_str(), info.id.as_str())
    );
    // Stored only hashed.
    assert!(
        db.query_strings("SELECT key_hash FROM api_keys")
            .await
            .iter()
            .all(|h| h != &created.api_key)
    );
    assert_status(
        c.create_key(s(
            pb::CreateKeyRequest { name: "  ".into() },
            &me.session,
            Some(&me.csrf),
        ))
        .await,
        Code::InvalidArgument,
        "invalid_argument",
    );

    let listed = c
        .list_keys(s(pb::ListKeysRequest {}, &me.session, None))
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].id, info.id, "newest first");
    assert!(
        listed
            .iter()
            .all(|k| !k.prefix.is_empty() && !k.created_at.is_empty())
    );

    // Rotation with a one-minute grace: both work, then only the new one.
    let rotated = c
        .rotate_key(s(
            pb::RotateKeyRequest {
                key_id: info.id.clone(),
                grace_seconds: 60,
            },
            &me.session,
            Some(&me.csrf),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rotated.key.as_ref().unwrap().name, "production");
    assert_eq!(
        rotated.replaced.as_ref().unwrap().status(),
        pb::KeyStatus::Grace
    );
    auth(&mut c, &created.api_key).await.unwrap();
    auth(&mut c, &rotated.api_key).await.unwrap();
    assert_status(
        c.rotate_key(s(
            pb::RotateKeyRequest {
                key_id: info.id.clone(),
                grace_seconds: 60,
            },
            &me.session,
            Some(&me.csrf),
        ))
        .await,
        Code::FailedPrecondition,
        "conflict",
    );
    assert_status(
        c.rotate_key(s(
            pb::RotateKeyRequest {
                key_id: rotated.key.as_ref().unwrap().id.clone(),
                grace_seconds: 8 * 86_400,
            },
            &me.session,
            Some(&me.csrf),
        ))
        .await,
        Code::InvalidArgument,
        "invalid_argument",
    );
    clock.advance(Duration::from_secs(61));
    assert_status(
        auth(&mut c, &created.api_key).await,
        Code::Unauthenticated,
        "unauthenticated",
    );
    auth(&mut c, &rotated.api_key).await.unwrap();

    // Revocation: at once.
    let revoked = c
        .revoke_key(s(
            pb::RevokeKeyRequest {
                key_id: rotated.key.unwrap().id,
            },
            &me.session,
            Some(&me.csrf),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.status(), pb::KeyStatus::Revoked);
    assert_eq!(revoked.revoked_by, "customer");
    assert_status(
        auth(&mut c, &rotated.api_key).await,
        Code::Unauthenticated,
        "unauthenticated",
    );
    auth(&mut c, &first.api_key).await.unwrap();

    // Every key event wrote a security notice.
    let kinds = mail_kinds(&db, "k@exemple.dz").await;
    let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
    assert_eq!(
        (count("key_created"), count("key_revoked")),
        (2, 2),
        "{kinds:?}"
    );

    // At most 10 live keys.
    for i in 0..9 {
        c.create_key(s(
            pb::CreateKeyRequest {
                name: format!("k{i}"),
            },
            &me.session,
            Some(&me.csrf),
        ))
        .await
        .unwrap();
    }
    assert_status(
        c.create_key(s(
            pb::CreateKeyRequest {
                name: "one more".into(),
            },
            &me.session,
            Some(&me.csrf),
        ))
        .await,
        Code::FailedPrecondition,
        "conflict",
    );
    app.stop().await.unwrap();
}

async fn operator_revoked_customer_recovers_through_sign_in(backend: Backend) {
    let db = test_db(backend).await;
    let (app, _clock) = spawn(&db).await;
    let mut c = app.client.clone();
    let r = c
        .signup(signup_req("lost@exemple.dz", "starter", ""))
        .await
        .unwrap()
        .into_inner();
    c.revoke_api_key(admin(pb::RevokeApiKeyRequest {
        user_id: r.user_id.clone(),
    }))
    .await
    .unwrap();
    assert_status(
        auth(&mut c, &r.api_key).await,
        Code::Unauthenticated,
        "unauthenticated",
    );
    // Signing up again is not the way back.
    assert_status(
        c.signup(signup_req("lost@exemple.dz", "starter", "")).await,
        Code::AlreadyExists,
        "email_taken",
    );
    let me = sign_in(&mut c, &db, "lost@exemple.dz").await;
    let keys = c
        .list_keys(s(pb::ListKeysRequest {}, &me.session, None))
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert_eq!(keys[0].status(), pb::KeyStatus::Revoked);
    assert_eq!(keys[0].revoked_by, "operator");
    let fresh = c
        .create_key(s(
            pb::CreateKeyRequest {
                name: "retour".into(),
            },
            &me.session,
            Some(&me.csrf),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        auth(&mut c, &fresh.api_key).await.unwrap().user_id,
        r.user_id
    );
    let listed = c
        .list_signups(admin(pb::ListSignupsRequest {
            page_size: 0,
            page_token: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed.signups.len(),
        1,
        "one row per customer, whatever its keys"
    );
    assert!(!listed.signups[0].api_key_revoked);

    // A suspended account signs in but gets no new key.
    db.exec(&format!(
        "UPDATE customers SET suspended_at = 1 WHERE id = '{}'",
        r.user_id
    ))
    .await;
    assert!(account(&mut c, &me).await.suspended);
    assert_status(
        c.create_key(s(
            pb::CreateKeyRequest {
                name: "encore".into(),
            },
            &me.session,
            Some(&me.csrf),
        ))
        .await,
        Code::PermissionDenied,
        "account_suspended",
    );
    app.stop().await.unwrap();
}

fn suspension(user_id: &str, suspended: bool) -> pb::SetAccountSuspendedRequest {
    pb::SetAccountSuspendedRequest {
        user_id: user_id.into(),
        suspended,
    }
}

/// The operator suspends an account: none of its keys authenticates and none can be created or
/// rotated, the customer still signs in and sees it; reactivated, the keys work again. Only the
/// admin token may do it.
async fn operator_suspends_and_reactivates_an_account(backend: Backend) {
    let db = test_db(backend).await;
    let (app, _clock) = spawn(&db).await;
    let mut c = app.client.clone();
    let r = c
        .signup(signup_req("suspendu@exemple.dz", "starter", ""))
        .await
        .unwrap()
        .into_inner();
    let other = c
        .signup(signup_req("voisin@exemple.dz", "starter", ""))
        .await
        .unwrap()
        .into_inner();
    let me = sign_in(&mut c, &db, "suspendu@exemple.dz").await;
    let second = c
        .create_key(s(
            pb::CreateKeyRequest {
                name: "deuxième".into(),
            },
            &me.session,
            Some(&me.csrf),
        ))
        .await
        .unwrap()
        .into_inner();
    // Only the admin token suspends: not the internal token, not an anonymous call.
    assert_status(
        c.set_account_suspended(internal(suspension(&r.user_id, true)))
            .await,
        Code::Unauthenticated,
        "unauthenticated",
    );
    assert_status(
        c.set_account_suspended(Request::new(suspension(&r.user_id, true)))
            .await,
        Code::Unauthenticated,
        "unauthenticated",
    );
    assert!(auth(&mut c, &r.api_key).await.is_ok());

    let done = c
        .set_account_suspended(admin(suspension(&r.user_id, true)))
        .await
        .unwrap()
        .into_inner();
    assert!(done.suspended && done.changed);
    let again = c
        .set_account_suspended(admin(suspension(&r.user_id, true)))
        .await
        .unwrap()
        .into_inner();
    assert!(again.suspended && !again.changed);
    for key in [&r.api_key, &second.api_key] {
        assert_status(
            auth(&mut c, key).await,
            Code::Unauthenticated,
            "unauthenticated",
        );
    }
    // Another customer is untouched.
    assert_eq!(
        auth(&mut c, &other.api_key).await.unwrap().user_id,
        other.user_id
    );
    assert!(account(&mut c, &me).await.suspended);
    assert_status(
        c.create_key(s(
            pb::CreateKeyRequest {
                name: "encore".into(),
            },
            &me.session,
            Some(&me.csrf),
        ))
        .await,
        Code::PermissionDenied,
        "account_suspended",
    );
    assert_status(
        c.rotate_key(s(
            pb::RotateKeyRequest {
                key_id: second.key.as_ref().unwrap().id.clone(),
                grace_seconds: 0,
            },
            &me.session,
            Some(&me.csrf),
        ))
        .await,
        Code::PermissionDenied,
        "account_suspended",
    );
    // Signing in still works while suspended.
    let later = sign_in(&mut c, &db, "suspendu@exemple.dz").await;
    assert!(account(&mut c, &later).await.suspended);

    let back = c
        .set_account_suspended(admin(suspension(&r.user_id, false)))
        .await
        .unwrap()
        .into_inner();
    assert!(!back.suspended && back.changed);
    assert!(!account(&mut c, &me).await.suspended);
    for key in [&r.api_key, &second.api_key] {
        assert_eq!(auth(&mut c, key).await.unwrap().user_id, r.user_id);
    }
    assert_status(
        c.set_account_suspended(admin(suspension("usr_inconnu", true)))
            .await,
        Code::NotFound,
        "not_found",
    );
    app.stop().await.unwrap();
}

async fn package_changes_and_cancellation(backend: Backend) {
    let db = test_db(backend).await;
    let (app, clock) = spawn(&db).await;
    let mut c = app.client.clone();
    c.create_code(admin(pb::CreateCodeRequest {
        code: "DEVBIZ".into(),
        description: "dev et business".into(),
        max_redemptions: None,
        duration_months: 6,
        valid_from: String::new(),
        valid_until: String::new(),
        discounts: [("dev".to_owned(), 20), ("business".to_owned(), 10)].into(),
    }))
    .await
    .unwrap();
    let r = c
        .signup(signup_req("p@exemple.dz", "dev", "DEVBIZ"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.price_dzd, 12_000);
    let me = sign_in(&mut c, &db, "p@exemple.dz").await;

    // Upgrade: now, the code's percentage for business, the same end date.
    let preview = c
        .preview_package_change(s(
            pb::PreviewPackageChangeRequest {
                package: "business".into(),
            },
            &me.session,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(preview.kind, "upgrade");
    assert_eq!((preview.price_dzd, preview.discount_percent), (90_000, 10));
    assert_eq!(preview.discount_ends_at, r.discount_ends_at);
    assert!(!preview.discount_lost);
    let applied = c
        .change_package(s(
            pb::ChangePackageRequest {
                package: "business".into(),
            },
            &me.session,
            Some(&me.csrf),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(applied, preview);
    let acc = account(&mut c, &me).await;
    assert_eq!(
        (
            acc.package.unwrap().id.as_str(),
            acc.price_dzd,
            acc.base_price_dzd
        ),
        ("business", 90_000, 100_000)
    );
    assert_eq!(
        auth(&mut c, &r.api_key).await.unwrap().package.unwrap().id,
        "business"
    );

    // Downgrade to a package the code does not cover: said before confirming, effective at the
    // next period, the discount ends then.
    let preview = c
        .preview_package_change(s(
            pb::PreviewPackageChangeRequest {
                package: "starter".into(),
            },
            &me.session,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(preview.kind, "downgrade");
    assert!(preview.discount_lost);
    assert!(
        preview.message.contains("DEVBIZ") && preview.message.contains("prend fin"),
        "{}",
        preview.message
    );
    assert_eq!(preview.effective_at, acc.period_end);
    assert_eq!(preview.price_dzd, 10_000);
    c.change_package(s(
        pb::ChangePackageRequest {
            package: "starter".into(),
        },
        &me.session,
        Some(&me.csrf),
    ))
    .await
    .unwrap();
    let acc = account(&mut c, &me).await;
    assert_eq!(
        (acc.pending_package.as_str(), acc.pending_from.as_str()),
        ("starter", preview.effective_at.as_str())
    );
    assert_eq!(
        auth(&mut c, &r.api_key).await.unwrap().package.unwrap().id,
        "business"
    );
    // Same package, unknown package: refused.
    assert_status(
        c.preview_package_change(s(
            pb::PreviewPackageChangeRequest {
                package: "business".into(),
            },
            &me.session,
            None,
        ))
        .await,
        Code::FailedPrecondition,
        "conflict",
    );
    assert_status(
        c.preview_package_change(s(
            pb::PreviewPackageChangeRequest {
                package: "gold".into(),
            },
            &me.session,
            None,
        ))
        .await,
        Code::InvalidArgument,
        "unknown_package",
    );

    // The period ends: keys see starter at once, the account too.
    let boundary = chrono::DateTime::parse_from_rfc3339(&preview.effective_at)
        .unwrap()
        .timestamp_millis();
    clock.set(boundary + 1000);
    // A month later the session has long ended: sign in again.
    let me = sign_in(&mut c, &db, "p@exemple.dz").await;
    assert_eq!(
        auth(&mut c, &r.api_key).await.unwrap().package.unwrap().id,
        "starter"
    );
    let acc = account(&mut c, &me).await;
    assert_eq!(
        (
            acc.package.unwrap().id.as_str(),
            acc.price_dzd,
            acc.discount_percent
        ),
        ("starter", 10_000, 0)
    );
    assert!(acc.pending_package.is_empty());

    // Cancellation at the end of the period; withdrawn; cancelled again; keys stop after it.
    let acc = c
        .cancel_subscription(s(
            pb::CancelSubscriptionRequest { undo: false },
            &me.session,
            Some(&me.csrf),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(acc.cancel_at, acc.period_end);
    let acc = c
        .cancel_subscription(s(
            pb::CancelSubscriptionRequest { undo: true },
            &me.session,
            Some(&me.csrf),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(acc.cancel_at.is_empty());
    let acc = c
        .cancel_subscription(s(
            pb::CancelSubscriptionRequest { undo: false },
            &me.session,
            Some(&me.csrf),
        ))
        .await
        .unwrap()
        .into_inner();
    auth(&mut c, &r.api_key).await.unwrap();
    clock.set(
        chrono::DateTime::parse_from_rfc3339(&acc.cancel_at)
            .unwrap()
            .timestamp_millis()
            + 1,
    );
    assert_status(
        auth(&mut c, &r.api_key).await,
        Code::Unauthenticated,
        "unauthenticated",
    );

    let kinds = mail_kinds(&db, "p@exemple.dz").await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "package_changed").count(),
        5,
        "{kinds:?}"
    );
    assert_eq!(db.count("package_changes").await, 2);
    app.stop().await.unwrap();
}

async fn notices_are_written_once(backend: Backend) {
    let db = test_db(backend).await;
    let (app, clock) = spawn(&db).await;
    let mut c = app.client.clone();
    let r = c
        .signup(signup_req("n@exemple.dz", "dev", "LAUNCH30"))
        .await
        .unwrap()
        .into_inner();
    let ends = chrono::DateTime::parse_from_rfc3339(&r.discount_ends_at)
        .unwrap()
        .timestamp_millis();
    // 16 days before: nothing; 14 days before: one notice, however many passes run.
    clock.set(ends - 16 * 86_400_000);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !mail_kinds(&db, "n@exemple.dz")
            .await
            .contains(&"discount_ending".to_owned())
    );
    clock.set(ends - 14 * 86_400_000);
    let mut found = 0;
    for _ in 0..100 {
        found = mail_kinds(&db, "n@exemple.dz")
            .await
            .iter()
            .filter(|k| *k == "discount_ending")
            .count();
        if found > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(found, 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let payload = db
        .query_strings("SELECT payload FROM outbox WHERE kind = 'discount_ending'")
        .await;
    assert_eq!(payload.len(), 1);
    let v: serde_json::Value = serde_json::from_str(&payload[0]).unwrap();
    assert_eq!(
        (v["price_dzd"].as_u64(), v["base_price_dzd"].as_u64()),
        (Some(10_050), Some(15_000))
    );

    // Quota levels: once per customer, month and threshold.
    let level = |percent| pb::ReportQuotaLevelRequest {
        user_id: r.user_id.clone(),
        period: "2026-11".into(),
        percent,
        tokens_used: 4_000_000,
        tokens_per_month: 5_000_000,
        ..Default::default()
    };
    assert_status(
        c.report_quota_level(level(80)).await,
        Code::PermissionDenied,
        "permission_denied",
    );
    assert!(
        c.report_quota_level(internal(level(80)))
            .await
            .unwrap()
            .into_inner()
            .queued
    );
    assert!(
        !c.report_quota_level(internal(level(80)))
            .await
            .unwrap()
            .into_inner()
            .queued
    );
    assert!(
        c.report_quota_level(internal(level(100)))
            .await
            .unwrap()
            .into_inner()
            .queued
    );
    assert_status(
        c.report_quota_level(internal(level(50))).await,
        Code::InvalidArgument,
        "invalid_argument",
    );
    assert_eq!(
        mail_kinds(&db, "n@exemple.dz")
            .await
            .iter()
            .filter(|k| *k == "quota_level")
            .count(),
        2
    );
    app.stop().await.unwrap();
}

/// Through a real SMTP server: the link arrives by e-mail, works, and the outbox row keeps no
/// copy of it once sent.
async fn sign_in_link_by_smtp_and_scrubbed(backend: Backend) {
    let db = test_db(backend).await;
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = TestApp::spawn_with(&db, |c| {
        c.mail.smtp_url = Some(url);
        c.mail.public_url = "https://api.iafactory.dz".into();
    })
    .await;
    let mut c = app.client.clone();
    c.signup(signup_req("smtp@exemple.dz", "starter", ""))
        .await
        .unwrap();
    sink.wait_for(1).await;
    c.request_sign_in_link(internal(link_req("smtp@exemple.dz")))
        .await
        .unwrap();
    let got = sink.wait_for(2).await;
    let mail = got
        .iter()
        .find(|m| {
            m.header("subject").is_some_and(|s| s.contains("connexion")) || m.data.contains("jeton")
        })
        .expect("sign-in e-mail");
    let msg = mail_parser::MessageParser::default()
        .parse(mail.data.as_bytes())
        .unwrap();
    let text = msg.body_text(0).unwrap().into_owned();
    let link = text
        .split_whitespace()
        .find(|w| w.starts_with("https://api.iafactory.dz/compte/connexion#jeton="))
        .unwrap_or_else(|| panic!("{text}"));
    let token = link.split("#jeton=").nth(1).unwrap().to_owned();
    for _ in 0..100 {
        let p = db
            .query_strings(
                "SELECT payload FROM outbox WHERE kind = 'sign_in_link' AND status = 'sent'",
            )
            .await;
        if !p.is_empty() {
            assert_eq!(p, vec!["{}".to_owned()], "the sent row keeps no link");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let grant = c
        .consume_sign_in_link(pb::ConsumeSignInLinkRequest { token })
        .await
        .unwrap()
        .into_inner();
    assert!(!grant.session_token.is_empty());
    app.stop().await.unwrap();
}

crate::on_both_backends!(
    link_signs_in_once_and_sessions_end,
    unknown_addresses_and_rate_limits,
    links_sessions_and_keys_belong_to_one_customer,
    keys_are_created_rotated_and_revoked,
    operator_revoked_customer_recovers_through_sign_in,
    operator_suspends_and_reactivates_an_account,
    package_changes_and_cancellation,
    notices_are_written_once,
    sign_in_link_by_smtp_and_scrubbed,
);
