//! A small SMTP server on loopback that speaks enough of RFC 5321 for a real client (lettre) and
//! records what it receives. It can hold its answer to the end of DATA until the test releases it,
//! which lets a test kill the sender between "relay accepted" and "marked sent".

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};

#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
    /// When the end of DATA arrived (before the answer), to check a sender's pace.
    pub at: std::time::SystemTime,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.data
            .lines()
            .take_while(|l| !l.is_empty())
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_owned())
    }
}

#[derive(Default)]
struct State {
    received: Mutex<Vec<Received>>,
    arrived: Notify,
}

pub struct SmtpSink {
    pub addr: SocketAddr,
    state: Arc<State>,
    /// When `Some`, each DATA answer waits for a permit; `data_done` is notified first.
    gate: Option<Arc<Semaphore>>,
    pub data_done: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        Self::start_on("127.0.0.1:0".parse().unwrap(), false).await
    }

    /// `hold`: the 250 after DATA waits for [`SmtpSink::release`].
    pub async fn start_on(addr: SocketAddr, hold: bool) -> SmtpSink {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let gate = hold.then(|| Arc::new(Semaphore::new(0)));
        let data_done = Arc::new(Notify::new());
        let task = tokio::spawn({
            let state = Arc::clone(&state);
            let gate = gate.clone();
            let data_done = Arc::clone(&data_done);
            async move {
                loop {
                    let Ok((sock, _)) = listener.accept().await else {
                        return;
                    };
                    tokio::spawn(session(
                        sock,
                        Arc::clone(&state),
                        gate.clone(),
                        Arc::clone(&data_done),
                    ));
                }
            }
        });
        SmtpSink {
            addr,
            state,
            gate,
            data_done,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// What was received so far, readable from another task (the sink itself stays put).
    pub fn receiver(&self) -> impl Fn() -> Vec<Received> + Send + Sync + 'static {
        let state = Arc::clone(&self.state);
        move || state.received.lock().unwrap().clone()
    }

    pub fn release(&self, n: usize) {
        if let Some(g) = &self.gate {
            g.add_permits(n);
        }
    }

    /// Waits until at least `n` messages arrived (bounded: fails after 30 s).
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let notified = self.state.arrived.notified();
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("only {} of {n} e-mails arrived", self.received().len());
            }
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn session(
    sock: tokio::net::TcpStream,
    state: Arc<State>,
    gate: Option<Arc<Semaphore>>,
    data_done: Arc<Notify>,
) {
    let (r, mut w) = sock.into_split();
    let mut lines = BufReader::new(r).lines();
    let mut from = String::new();
    let mut to = Vec::new();
    if w.write_all(b"220 sink.test ESMTP ready\r\n").await.is_err() {
        return;
    }
    while let Ok(Some(line)) = lines.next_line().await {
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if upper.starts_with("HELO") {
            b"250 sink.test\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            from = line[10..].trim().to_owned();
            to.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            to.push(line[8..].trim().to_owned());
            b"250 OK\r\n"
        } else if upper == "DATA" {
            if w.write_all(b"354 end with .\r\n").await.is_err() {
                return;
            }
            let mut data = String::new();
            while let Ok(Some(l)) = lines.next_line().await {
                if l == "." {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                data.push('\n');
            }
            data_done.notify_waiters();
            if let Some(g) = &gate {
                match g.acquire().await {
                    Ok(p) => p.forget(),
                    Err(_) => return,
                }
            }
            state.received.lock().unwrap().push(Received {
                from: from.clone(),
                to: to.clone(),
                data,
                at: std::time::SystemTime::now(),
            });
            state.arrived.notify_waiters();
            b"250 OK queued\r\n"
        } else if upper.starts_with("RSET") || upper.starts_with("NOOP") {
            b"250 OK\r\n"
        } else if upper.starts_with("QUIT") {
            let _ = w.write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"502 unsupported\r\n"
        };
        if w.write_all(reply).await.is_err() {
            return;
        }
    }
}
