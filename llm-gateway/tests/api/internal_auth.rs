//! The internal credential between the services: promo-service answers `AuthenticateKey` only to
//! a gateway presenting `INTERNAL_TOKEN`, and the gateway answers `ListProviders` only to callers
//! presenting it. A gateway with the wrong token reports promo-service as unavailable (503),
//! never a customer's valid key as invalid.

use iafactory::proto::iafactory::llm::v1 as pb;
use iafactory::secret::InternalToken;
use tonic::Code;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_providers_needs_the_internal_token() {
    let promo = Promo::start().await;
    let db = test_db(Backend::Sqlite).await;
    let catalog = llm_gateway::catalog::Catalog::builtin().unwrap();
    let mut gw = Gw::start(config(&db, &promo, catalog)).await;
    for req in [
        tonic::Request::new(pb::ListProvidersRequest {}),
        authed(pb::ListProvidersRequest {}, "wrong-token-0123456789"),
        authed(pb::ListProvidersRequest {}, ADMIN_TOKEN),
    ] {
        let err = gw.client.list_providers(req).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
        assert_eq!(error_code(&err), "permission_denied");
    }
    let answered = gw
        .client
        .list_providers(internal(pb::ListProvidersRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(answered.mock_active);
    gw.stop().await;
    promo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_with_the_wrong_token_is_unavailable_not_a_key_refusal() {
    let mut promo = Promo::start().await;
    let (_, key) = promo.signup("starter").await;
    let db = test_db(Backend::Sqlite).await;
    let catalog = llm_gateway::catalog::Catalog::builtin().unwrap();
    let mut cfg = config(&db, &promo, catalog);
    cfg.internal_token = Some(InternalToken::new("not-the-promo-token-0123"));
    let mut gw = Gw::start(cfg).await;
    for _ in 0..2 {
        // Twice: the refusal is not cached as "invalid key" either.
        let err = gw
            .client
            .chat(authed(chat_req("gpt-4o-mini", "Bonjour"), &key))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    }
    gw.stop().await;

    // The same key through a gateway with the right token works.
    let db2 = test_db(Backend::Sqlite).await;
    let catalog = llm_gateway::catalog::Catalog::builtin().unwrap();
    let mut gw = Gw::start(config(&db2, &promo, catalog)).await;
    gw.client
        .chat(authed(chat_req("gpt-4o-mini", "Bonjour"), &key))
        .await
        .unwrap();
    gw.stop().await;
    promo.stop().await;
}
