//! Contacts imported from CSV (`Campaigns.ImportContacts`): bad rows reported by line while the
//! rest imports, duplicates merged on the canonical address, nothing half-imported when the
//! database fails mid-way, hostile files refused whole; and the waitlist's answer, the same for
//! every address (no enumeration), with one confirmation e-mail. Both backends.

use iafactory::proto::iafactory::promo::v1 as pb;
use pb::campaigns_client::CampaignsClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::helpers::*;

pub(crate) async fn campaigns(app: &TestApp) -> CampaignsClient<Channel> {
    CampaignsClient::connect(format!("http://{}", app.addr))
        .await
        .unwrap()
}

pub(crate) fn import(csv: &str) -> pb::ImportContactsRequest {
    pb::ImportContactsRequest {
        csv: csv.to_owned(),
        default_source: "import".into(),
    }
}

async fn malformed_rows_are_reported_and_the_rest_imported(backend: Backend) {
    let db = test_db(backend).await;
    let app = TestApp::spawn(&db).await;
    let mut c = campaigns(&app).await;
    // BOM, CRLF, semicolons, a quoted name with a separator, a doubled quote and a line break,
    // a formula kept as plain text, duplicates in other spellings.
    let file = "\u{feff}email;nom;source;consent_at\r\n\
                amine@exemple.dz;Amine;salon;2025-11-02\r\n\
                pas-une-adresse;X;;\r\n\
                \"sara@exemple.dz\";\"Sara; \"\"la\"\"\nB.\";;02/11/2025\r\n\
                AMINE@EXEMPLE.DZ;;;\r\n\
                  Lina@Exemple.DZ  ;=HYPERLINK(\"http://evil\");web;\r\n\
                bad@exemple.dz;Y;;2025-13-45\r\n\
                trop;de;champs;ici;encore\r\n\
                \r\n\
                last@exemple.dz;Last;;2025-10-01T08:00:00Z";
    let r = c
        .import_contacts(admin(import(file)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.rows, 8, "{r:?}");
    assert_eq!((r.created, r.merged), (4, 1), "{r:?}");
    let lines: Vec<u32> = r.problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![3, 8, 9], "{r:?}");
    assert!(
        r.problems[0].reason.contains("adresse e-mail invalide"),
        "{r:?}"
    );
    assert!(
        r.problems[1].reason.contains("date de consentement"),
        "{r:?}"
    );
    assert!(r.problems[2].reason.contains("champ(s)"), "{r:?}");
    assert_eq!(db.count("contacts").await, 4);
    // The merge kept the first name and consent, the canonical address, the formula as text.
    assert_eq!(
        db.query_strings("SELECT name FROM contacts WHERE email = 'amine@exemple.dz'")
            .await,
        vec!["Amine"]
    );
    assert_eq!(
        db.query_strings("SELECT name FROM contacts WHERE email = 'lina@exemple.dz'")
            .await,
        vec!["=HYPERLINK(\"http://evil\")"]
    );
    assert_eq!(
        db.query_strings("SELECT name FROM contacts WHERE email = 'sara@exemple.dz'")
            .await,
        vec!["Sara; \"la\" B."]
    );
    let listed = c
        .list_contacts(admin(pb::ListContactsRequest { limit: 0 }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((listed.total, listed.with_consent), (4, 3), "{listed:?}");
    assert_eq!(
        db.query_strings("SELECT action FROM audit_log").await,
        vec!["contacts.import"]
    );

    // Refused whole: no `email` column, too large, and without the owner's credentials.
    for (bad, why) in [
        ("name,source\na,b\n".to_owned(), "email"),
        (format!("email\n{}", "a".repeat(600 * 1024)), "volumineux"),
    ] {
        let e = c.import_contacts(admin(import(&bad))).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(e.message().contains(why), "{e:?}");
    }
    let e = c
        .import_contacts(tonic::Request::new(import("email\na@b.dz\n")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert_eq!(db.count("contacts").await, 4);
    app.stop().await.unwrap();
}

async fn a_database_error_imports_nothing(backend: Backend) {
    let db = test_db(backend).await;
    let app = TestApp::spawn(&db).await;
    let mut c = campaigns(&app).await;
    // The 50th row makes the database fail, after 49 rows were written in the transaction.
    match backend {
        Backend::Sqlite => {
            db.exec(
                "CREATE TRIGGER boom BEFORE INSERT ON contacts WHEN NEW.email = 'boom@exemple.dz' \
                 BEGIN SELECT RAISE(ABORT, 'disk says no'); END",
            )
            .await;
        }
        Backend::Postgres => {
            db.exec(
                "CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN \
                 IF NEW.email = 'boom@exemple.dz' THEN RAISE EXCEPTION 'disk says no'; END IF; \
                 RETURN NEW; END $$ LANGUAGE plpgsql",
            )
            .await;
            db.exec(
                "CREATE TRIGGER boom BEFORE INSERT ON contacts FOR EACH ROW EXECUTE FUNCTION boom()",
            )
            .await;
        }
    }
    let mut file = String::from("email,consent_at\n");
    for i in 0..49 {
        file.push_str(&format!("c{i}@exemple.dz,2025-11-01\n"));
    }
    file.push_str("boom@exemple.dz,2025-11-01\n");
    let e = c.import_contacts(admin(import(&file))).await.unwrap_err();
    assert_eq!(e.code(), Code::Internal, "{e:?}");
    assert_eq!(db.count("contacts").await, 0, "nothing half-imported");
    assert_eq!(db.count("audit_log").await, 0);
    app.stop().await.unwrap();
}

async fn the_waitlist_answers_the_same_for_every_address(backend: Backend) {
    let db = test_db(backend).await;
    let app = TestApp::spawn(&db).await;
    let mut c = campaigns(&app).await;
    let join = |email: &str, consent: bool| {
        internal(pb::JoinWaitlistRequest {
            email: email.into(),
            consent,
            lang: String::new(),
        })
    };
    let first = c
        .join_waitlist(join("Wait@Exemple.dz", true))
        .await
        .unwrap()
        .into_inner();
    let again = c
        .join_waitlist(join("wait@exemple.dz", true))
        .await
        .unwrap()
        .into_inner();
    let other = c
        .join_waitlist(join("new@exemple.dz", true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, again);
    assert_eq!(first, other);
    // One confirmation e-mail per address within the hour, whatever the number of requests.
    assert_eq!(
        db.query_strings(
            "SELECT recipient FROM outbox WHERE kind = 'waitlist_confirm' ORDER BY recipient"
        )
        .await,
        vec!["new@exemple.dz", "wait@exemple.dz"]
    );
    // Nothing counts before the link is opened.
    let list = c
        .list_waitlist(admin(pb::ListWaitlistRequest { limit: 0 }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((list.confirmed, list.unconfirmed), (0, 2));
    // Consent is required; the public RPC needs the internal token.
    let e = c
        .join_waitlist(join("x@exemple.dz", false))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c
        .join_waitlist(tonic::Request::new(pb::JoinWaitlistRequest {
            email: "x@exemple.dz".into(),
            consent: true,
            lang: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // A token that is not ours confirms nothing.
    let e = c
        .confirm_waitlist(internal(pb::MailTokenRequest {
            token: "d2FpdGxpc3Q6MDp3YWl0QGV4ZW1wbGUuZHo.00".into(),
            lang: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    // The page's language is stored with the entry (its e-mail is written in it); a language
    // we do not write in is refused before anything is stored.
    let arabic = |email: &str, lang: &str| {
        internal(pb::JoinWaitlistRequest {
            email: email.into(),
            consent: true,
            lang: lang.into(),
        })
    };
    let answer = c
        .join_waitlist(arabic("arabe@exemple.dz", "ar"))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.message.starts_with("شكرًا"), "{answer:?}");
    let e = c
        .join_waitlist(arabic("en@exemple.dz", "en"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(
        db.query_strings("SELECT email || ':' || lang FROM waitlist ORDER BY email")
            .await,
        vec![
            "arabe@exemple.dz:ar",
            "new@exemple.dz:fr",
            "wait@exemple.dz:fr"
        ]
    );
    let payload = db
        .query_strings(
            "SELECT payload FROM outbox WHERE kind = 'waitlist_confirm' \
             AND recipient = 'arabe@exemple.dz'",
        )
        .await;
    assert!(payload[0].contains("\"locale\":\"ar\""), "{payload:?}");
    assert!(payload[0].contains("&lang=ar"), "{payload:?}");
    app.stop().await.unwrap();
}

crate::on_both_backends!(
    malformed_rows_are_reported_and_the_rest_imported,
    a_database_error_imports_nothing,
    the_waitlist_answers_the_same_for_every_address,
);
