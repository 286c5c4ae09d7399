//! Restore drill of the SQLite backup (`scripts/backup-sqlite.sh`, README "Deploy"): a running
//! promo-service takes signups from several clients while the backup runs; a promo-service started
//! on the restored copy knows every signup answered before the backup began (its customer, its
//! API key, its redemption of a limited code), and the copy passes `PRAGMA integrity_check`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use iafactory::proto::iafactory::promo::v1 as pb;

use crate::helpers::*;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/backup-sqlite.sh");
const WRITERS: usize = 4;

/// One answered signup.
struct Answered {
    email: String,
    api_key: String,
    user_id: String,
    with_code: bool,
    at: Instant,
}

fn integrity_check(path: &Path) -> String {
    let out = std::process::Command::new("sqlite3")
        .arg(path)
        .arg("PRAGMA integrity_check")
        .output()
        .expect("the sqlite3 CLI is needed (scripts/test-setup.sh installs it)");
    assert!(
        out.status.success(),
        "sqlite3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn online_sqlite_backup_restores_every_answered_signup() {
    let dir = tempfile::tempdir().unwrap();
    let live_db = dir.path().join("promo.db");
    let app = TestApp::spawn_on(&format!("sqlite://{}", live_db.display()), |_| {}).await;
    let mut admin_client = app.client.clone();
    create_code(&mut admin_client, "DRILL", 100_000).await;

    // Clients signing up without a pause until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let mut c = app.client.clone();
        let (stop, count) = (Arc::clone(&stop), Arc::clone(&count));
        writers.push(tokio::spawn(async move {
            let mut answered = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let email = format!("w{w}-{n}@drill.dz");
                let with_code = n % 2 == 0;
                let code = if with_code { "DRILL" } else { "" };
                let r = c
                    .signup(signup_req(&email, "starter", code))
                    .await
                    .unwrap_or_else(|s| panic!("signup {email} failed during the backup: {s:?}"))
                    .into_inner();
                answered.push(Answered {
                    email,
                    api_key: r.api_key,
                    user_id: r.user_id,
                    with_code,
                    at: Instant::now(),
                });
                count.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
            answered
        }));
    }
    let wait_for = |target: usize| {
        let count = Arc::clone(&count);
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while count.load(Ordering::Relaxed) < target {
                assert!(Instant::now() < deadline, "signups too slow");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    wait_for(100).await;

    // The backup, while the writers keep going.
    let backup = dir.path().join("backups").join("promo-backup.db");
    let began = Instant::now();
    let out = {
        let backup = backup.clone();
        let live_db = live_db.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(SCRIPT)
                .arg(&live_db)
                .arg(&backup)
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    let ended = Instant::now();
    assert!(
        out.status.success(),
        "backup failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let after_backup = count.load(Ordering::Relaxed);
    wait_for(after_backup + 20).await;
    stop.store(true, Ordering::Relaxed);
    let mut answered = Vec::new();
    for w in writers {
        answered.extend(w.await.unwrap());
    }
    let before: Vec<&Answered> = answered.iter().filter(|a| a.at < began).collect();
    let during = answered
        .iter()
        .filter(|a| a.at >= began && a.at <= ended)
        .count();
    println!(
        "backup took {:?}; signups answered before it: {}, during it: {during}, in all: {}",
        ended - began,
        before.len(),
        answered.len()
    );
    assert!(before.len() >= 100);
    assert!(
        answered.iter().any(|a| a.at > ended),
        "writers stopped early"
    );
    app.stop().await.unwrap();

    // Restore: the copy becomes the database of a new promo-service.
    assert_eq!(integrity_check(&backup), "ok");
    let restored_dir = tempfile::tempdir().unwrap();
    let restored_db = restored_dir.path().join("promo.db");
    std::fs::copy(&backup, &restored_db).unwrap();
    let restored = TestApp::spawn_on(&format!("sqlite://{}", restored_db.display()), |_| {}).await;
    let mut c = restored.client.clone();
    let stats = c
        .get_stats(admin(pb::GetStatsRequest {}))
        .await
        .unwrap()
        .into_inner();
    let clients: BTreeSet<&str> = stats.clients.iter().map(String::as_str).collect();
    assert_eq!(stats.total_signups as usize, clients.len());
    assert!(clients.len() <= answered.len());

    // Every signup answered before the backup began is there, with a working API key.
    for a in &before {
        assert!(
            clients.contains(a.email.as_str()),
            "{} was answered before the backup began but is missing from it",
            a.email
        );
        let who = c
            .authenticate_key(internal(pb::AuthenticateKeyRequest {
                api_key: a.api_key.clone(),
            }))
            .await
            .unwrap_or_else(|s| panic!("{}'s key does not authenticate: {s:?}", a.email))
            .into_inner();
        assert_eq!(who.user_id, a.user_id);
    }

    // The copy is one consistent moment: the limited code's counter matches the signups in it,
    // and it holds no signup the service never answered.
    let by_email: BTreeMap<&str, &Answered> =
        answered.iter().map(|a| (a.email.as_str(), a)).collect();
    let mut with_code_in_copy = 0;
    for email in &clients {
        let a = by_email
            .get(email)
            .unwrap_or_else(|| panic!("{email} is in the copy but was never answered"));
        if a.with_code {
            with_code_in_copy += 1;
        }
    }
    let drill = stats.codes.iter().find(|k| k.code == "DRILL").unwrap();
    assert_eq!(drill.used, with_code_in_copy);

    // The restored service takes new signups.
    c.signup(signup_req("after-restore@drill.dz", "dev", "DRILL"))
        .await
        .unwrap();
    restored.stop().await.unwrap();
    assert_eq!(integrity_check(&restored_db), "ok");
}
