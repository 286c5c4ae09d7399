//! Faults while a campaign sends.
//!
//! - SIGKILL of the real binary in the middle of a paced campaign, while it is inside an SMTP
//!   exchange, then a restart: the campaign completes and nobody is lost. Delivery is
//!   at-least-once, and this test measures the bound: the one message whose DATA the relay had
//!   when the process died (the relay accepts it after the connection dropped, the worst case)
//!   goes out again, with the same Message-ID so the receiving side can drop it. The worker sends
//!   one message at a time, so a kill duplicates at most one message per replica; every other
//!   recipient gets the campaign exactly once.
//! - A full disk (SQLite on a small tmpfs) when a campaign falls due: it stays `scheduled`,
//!   nothing is sent (a message the outbox could not mark sent would go out twice) and nothing is
//!   marked sent; once space returns it starts and completes by itself, one message each.

use std::collections::HashMap;
use std::time::Duration;

use iafactory::proto::iafactory::promo::v1 as pb;
use iafactory_testkit::smtp_sink::{Received, SmtpSink};
use pb::campaigns_client::CampaignsClient;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::contacts::{campaigns, import};
use crate::faults::wait_health;
use crate::helpers::*;
use crate::mail::{free_addr, start_bin_with};
use iafactory_testkit::disk::SmallDisk;

fn contact(i: usize) -> String {
    format!("contact{i:03}@exemple.dz")
}

fn contacts_csv(n: usize) -> String {
    let mut csv = String::from("email,consent_at\n");
    for i in 0..n {
        csv.push_str(&format!("{},2025-11-01\n", contact(i)));
    }
    csv
}

async fn campaigns_at(addr: std::net::SocketAddr) -> CampaignsClient<Channel> {
    for _ in 0..200 {
        if let Ok(c) = CampaignsClient::connect(format!("http://{addr}")).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("promo-service did not come up on {addr}");
}

/// Imports `n` contacts and creates a French announcement to them; returns its id.
async fn draft(c: &mut CampaignsClient<Channel>, n: usize) -> String {
    let done = c
        .import_contacts(admin(import(&contacts_csv(n))))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.created, u32::try_from(n).unwrap(), "{done:?}");
    c.create_campaign(admin(pb::CreateCampaignRequest {
        name: "Annonce".into(),
        template: "announcement".into(),
        locale: "fr".into(),
        audience: "contacts".into(),
    }))
    .await
    .unwrap()
    .into_inner()
    .id
}

async fn campaign(c: &mut CampaignsClient<Channel>, id: &str) -> pb::Campaign {
    c.get_campaign(admin(pb::GetCampaignRequest { id: id.into() }))
        .await
        .unwrap()
        .into_inner()
}

/// Waits until the campaign is sending and has nothing pending; returns its progress.
async fn finished(c: &mut CampaignsClient<Channel>, id: &str) -> pb::CampaignProgress {
    let mut last = None;
    for _ in 0..600 {
        let got = campaign(c, id).await;
        let p = got.progress.unwrap_or_default();
        if got.status == "sending" && p.pending == 0 {
            return p;
        }
        last = Some(got);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("campaign {id} did not finish: {last:?}");
}

fn recipient(m: &Received) -> String {
    m.to.join(",")
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

/// How many campaign messages each recipient got, and each Message-ID.
fn deliveries(all: &[Received]) -> (HashMap<String, usize>, HashMap<String, usize>) {
    let mut per_recipient = HashMap::new();
    let mut per_id = HashMap::new();
    for m in all
        .iter()
        .filter(|m| m.header("List-Unsubscribe").is_some())
    {
        *per_recipient.entry(recipient(m)).or_insert(0) += 1;
        *per_id
            .entry(m.header("Message-ID").unwrap_or_default())
            .or_insert(0) += 1;
    }
    (per_recipient, per_id)
}

async fn sigkill_mid_campaign_loses_nobody_and_duplicates_at_most_the_message_in_flight(
    backend: Backend,
) {
    const N: usize = 20;
    let db = test_db(backend).await;
    // The relay answers DATA only when the test says so.
    let sink = SmtpSink::start_on("127.0.0.1:0".parse().unwrap(), true).await;
    // One message every 100 ms: 2 s for the campaign.
    let settings = [
        ("CAMPAIGN_RATE_PER_MIN", "600"),
        ("CAMPAIGN_POLL_MS", "100"),
        ("OUTBOX_POLL_MS", "50"),
    ];
    let addr = free_addr();
    let mut child = start_bin_with(&db.url, addr.port(), &sink.url(), &settings);
    let mut c = campaigns_at(addr).await;
    let id = draft(&mut c, N).await;
    sink.release(8);
    c.schedule_campaign(admin(pb::ScheduleCampaignRequest {
        id: id.clone(),
        send_at: String::new(),
    }))
    .await
    .unwrap();
    // Eight delivered and marked; the ninth is due 100 ms later and its DATA waits for an
    // answer that does not come (the worker waits up to its 15 s SMTP timeout). Killed there.
    sink.wait_for(8).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.received().len(), 8);
    let before = campaign(&mut c, &id).await.progress.unwrap_or_default();
    assert_eq!(
        (before.sent, before.pending),
        (8, 12),
        "the ninth is not marked sent: {before:?}"
    );
    child.kill().unwrap(); // SIGKILL: no shutdown path runs.
    child.wait().unwrap();
    // The relay keeps the ninth although the connection is gone (the worst case for a sender).
    sink.release(1000);
    sink.wait_for(9).await;

    let addr = free_addr();
    let mut child = start_bin_with(&db.url, addr.port(), &sink.url(), &settings);
    let mut c = campaigns_at(addr).await;
    let p = finished(&mut c, &id).await;
    assert_eq!(
        (p.recipients, p.sent, p.failed, p.pending, p.suppressed),
        (20, 20, 0, 0, 0),
        "{p:?}"
    );
    let (per_recipient, per_id) = deliveries(&sink.received());
    let lost: Vec<String> = (0..N)
        .map(contact)
        .filter(|e| !per_recipient.contains_key(e))
        .collect();
    assert!(lost.is_empty(), "lost: {lost:?}");
    let twice: Vec<(&String, &usize)> = per_recipient.iter().filter(|(_, n)| **n > 1).collect();
    eprintln!(
        "SIGKILL during the SMTP exchange: {} message(s) for {N} recipients, {} recipient(s) \
         got it twice: {twice:?}",
        per_recipient.values().sum::<usize>(),
        twice.len()
    );
    // The measured bound: exactly the message in flight at the kill, once more, under the
    // same Message-ID; nobody else twice.
    assert_eq!(twice.len(), 1, "{per_recipient:?}");
    assert_eq!(*twice[0].1, 2);
    assert_eq!(twice[0].0, &contact(8), "the ninth in address order");
    assert_eq!(per_id.len(), N, "one Message-ID per recipient: {per_id:?}");
    child.kill().unwrap();
    child.wait().unwrap();
    db.close().await;
}

crate::on_both_backends!(
    sigkill_mid_campaign_loses_nobody_and_duplicates_at_most_the_message_in_flight
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn campaign_due_on_a_full_disk_waits_sends_nothing_and_resumes_by_itself() {
    const N: usize = 60;
    // Room for the campaigns' WAL once space returns (every message marked sent is a commit).
    let disk = SmallDisk::mount("16m");
    let url = format!("sqlite://{}/promo.db", disk.path().display());
    let sink = SmtpSink::start().await;
    let smtp = sink.url();
    let app = TestApp::spawn_on(&url, move |c| {
        c.storage_probe_interval = Duration::from_millis(100);
        c.mail.smtp_url = Some(smtp);
        c.mail.poll_interval = Duration::from_millis(20);
        c.campaigns.rate_per_min = 6000;
        c.campaigns.poll_interval = Duration::from_millis(100);
    })
    .await;
    let mut c = campaigns(&app).await;
    let first = draft(&mut c, N).await;
    let second = c
        .create_campaign(admin(pb::CreateCampaignRequest {
            name: "Annonce bis".into(),
            template: "announcement".into(),
            locale: "ar".into(),
            audience: "contacts".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .id;
    // The first falls due in 2 s; the disk fills up before.
    let send_at = iafactory::db::now_millis() + 2000;
    c.schedule_campaign(admin(pb::ScheduleCampaignRequest {
        id: first.clone(),
        send_at: chrono::DateTime::from_timestamp_millis(send_at)
            .unwrap()
            .to_rfc3339(),
    }))
    .await
    .unwrap();
    let filler = disk.fill();
    assert!(
        wait_health(app.addr, ServingStatus::NotServing, Duration::from_secs(5)).await,
        "health must turn NOT_SERVING while writes fail"
    );
    // The second is scheduled now, on the full disk: refused as unavailable (nothing saved), or
    // saved and answered as `scheduled` (starting is left to the job); never `sending`.
    let second_scheduled = match c
        .schedule_campaign(admin(pb::ScheduleCampaignRequest {
            id: second.clone(),
            send_at: String::new(),
        }))
        .await
    {
        Ok(r) => {
            assert_eq!(r.get_ref().status, "scheduled", "{r:?}");
            eprintln!("scheduled on the full disk: saved, answered `scheduled`");
            true
        }
        Err(e) => {
            assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
            eprintln!("scheduled on the full disk: refused, unavailable");
            false
        }
    };
    // Past the first one's time, still full: nothing sent, nothing started, nothing marked.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert!(sink.received().is_empty(), "sent while the disk was full");
    for id in [&first, &second] {
        let got = campaign(&mut c, id).await;
        let p = got.progress.unwrap_or_default();
        assert_ne!(got.status, "sending", "{got:?}");
        assert_eq!((p.sent, p.recipients), (0, 0), "{got:?}");
    }

    // Space returns: both start and complete by themselves (the refused one once the operator
    // schedules it again, as its answer told them).
    std::fs::remove_file(filler).unwrap();
    assert!(
        wait_health(app.addr, ServingStatus::Serving, Duration::from_secs(10)).await,
        "health must turn SERVING again once writes succeed"
    );
    if !second_scheduled {
        c.schedule_campaign(admin(pb::ScheduleCampaignRequest {
            id: second.clone(),
            send_at: String::new(),
        }))
        .await
        .unwrap();
    }
    for id in [&first, &second] {
        let p = finished(&mut c, id).await;
        assert_eq!(
            (p.recipients, p.sent, p.failed, p.pending),
            (60, 60, 0, 0),
            "{p:?}"
        );
    }
    let (per_recipient, _) = deliveries(&sink.received());
    assert_eq!(per_recipient.len(), N);
    assert!(
        per_recipient.values().all(|&n| n == 2),
        "each contact gets each of the two campaigns once: {per_recipient:?}"
    );
    app.stop().await.unwrap();
}
