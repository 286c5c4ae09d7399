//! A local upstream LLM server on 127.0.0.1:0 speaking each provider's real wire format over
//! HTTP/1.1 (keep-alive, `Content-Length` answers, chunked server-sent event streams), driven by
//! a script and recording every request it receives, so tests assert on what a provider would
//! actually have seen. Shared by the integration tests and the benchmark.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path with query string.
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the upstream answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A complete answer with `Content-Length`.
    Body {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// 200 `text/event-stream`, chunked; each event text is written as its own pieces (split in
    /// the middle, to exercise chunk boundaries). `drop_after`: close the connection abruptly
    /// after that many events instead of finishing the stream.
    Sse {
        events: Vec<String>,
        drop_after: Option<usize>,
    },
    /// Like `Sse`, pausing `pause` before event number `at` (a provider thinking mid-answer).
    SsePausing {
        events: Vec<String>,
        at: usize,
        pause: Duration,
    },
    /// Waits, then answers.
    Delay(Duration, Box<Reply>),
    /// Like `Sse`, one event every `every`, counting in `sent` the events fully handed to the
    /// connection (what the provider has produced so far).
    SsePaced {
        events: Vec<String>,
        every: Duration,
        sent: Arc<std::sync::atomic::AtomicUsize>,
    },
    /// Like `Sse`, but the whole event stream is cut into pieces of `chunk` bytes regardless of
    /// event, line or UTF-8 character boundaries.
    SseChunked { events: Vec<String>, chunk: usize },
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply::Body {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
        }
    }

    pub fn raw(status: u16, body: &str) -> Reply {
        Reply::Body {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_owned(),
        }
    }

    pub fn with_header(self, name: &str, value: &str) -> Reply {
        match self {
            Reply::Body {
                status,
                mut headers,
                body,
            } => {
                headers.push((name.to_owned(), value.to_owned()));
                Reply::Body {
                    status,
                    headers,
                    body,
                }
            }
            other => other,
        }
    }

    pub fn delayed(self, d: Duration) -> Reply {
        Reply::Delay(d, Box::new(self))
    }

    /// The same stream, pausing before event number `at`.
    pub fn pausing_at(self, at: usize, pause: Duration) -> Reply {
        match self {
            Reply::Sse { events, .. } => Reply::SsePausing { events, at, pause },
            other => other,
        }
    }

    /// The same stream re-cut into `chunk`-byte pieces.
    pub fn rechunked(self, chunk: usize) -> Reply {
        match self {
            Reply::Sse { events, .. } => Reply::SseChunked {
                events,
                chunk: chunk.max(1),
            },
            other => other,
        }
    }

    pub fn dropping_after(self, n: usize) -> Reply {
        match self {
            Reply::Sse { events, .. } => Reply::Sse {
                events,
                drop_after: Some(n),
            },
            other => other,
        }
    }
}

type Handler = dyn Fn(&Recorded, usize) -> Reply + Send + Sync;

/// A running upstream.
#[derive(Clone)]
pub struct Upstream {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

impl Upstream {
    /// Starts a server answering request number `n` (0-based) with `handler(req, n)`.
    pub async fn start(
        handler: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static,
    ) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let reqs = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let _ = sock.set_nodelay(true);
                tokio::spawn(serve_conn(sock, reqs.clone(), handler.clone()));
            }
        });
        Upstream {
            addr,
            requests,
            task: Arc::new(task),
        }
    }

    /// Always the same answer.
    pub async fn always(reply: Reply) -> Upstream {
        Upstream::start(move |_, _| reply.clone()).await
    }

    /// Answers `stream` to requests asking for a stream (`"stream": true`), `unary` to the others.
    pub async fn unary_or_stream(unary: Reply, stream: Reply) -> Upstream {
        Upstream::start(move |req, _| {
            if req.body["stream"] == true {
                stream.clone()
            } else {
                unary.clone()
            }
        })
        .await
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

async fn serve_conn(sock: TcpStream, reqs: Arc<Mutex<Vec<Recorded>>>, handler: Arc<Handler>) {
    let (rd, mut wr) = sock.into_split();
    let mut rd = BufReader::new(rd);
    loop {
        let mut line = String::new();
        match rd.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            match rd.read_line(&mut h).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if rd.read_exact(&mut body).await.is_err() {
            return;
        }
        let rec = Recorded {
            method,
            path,
            headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        };
        let n = {
            let mut r = reqs.lock().unwrap();
            r.push(rec.clone());
            r.len() - 1
        };
        let mut reply = handler(&rec, n);
        while let Reply::Delay(d, inner) = reply {
            tokio::time::sleep(d).await;
            reply = *inner;
        }
        let keep = match reply {
            Reply::Body {
                status,
                headers,
                body,
            } => {
                let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                head.push_str(&body);
                wr.write_all(head.as_bytes()).await.is_ok()
            }
            Reply::Sse { events, drop_after } => {
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";
                if wr.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for (i, ev) in events.iter().enumerate() {
                    if drop_after == Some(i) {
                        let _ = wr.flush().await;
                        // Give the client time to read what was sent, then cut the connection
                        // without the terminating chunk.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        return;
                    }
                    let bytes = ev.as_bytes();
                    let mid = bytes.len() / 2;
                    for piece in [&bytes[..mid], &bytes[mid..]] {
                        if piece.is_empty() {
                            continue;
                        }
                        let mut chunk = format!("{:x}\r\n", piece.len()).into_bytes();
                        chunk.extend_from_slice(piece);
                        chunk.extend_from_slice(b"\r\n");
                        if wr.write_all(&chunk).await.is_err() {
                            return;
                        }
                        let _ = wr.flush().await;
                    }
                }
                if drop_after.is_some() {
                    return;
                }
                wr.write_all(b"0\r\n\r\n").await.is_ok()
            }
            Reply::SsePausing { events, at, pause } => {
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
                if wr.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for (i, ev) in events.iter().enumerate() {
                    if i == at {
                        tokio::time::sleep(pause).await;
                    }
                    let mut c = format!("{:x}\r\n", ev.len()).into_bytes();
                    c.extend_from_slice(ev.as_bytes());
                    c.extend_from_slice(b"\r\n");
                    if wr.write_all(&c).await.is_err() {
                        return;
                    }
                    let _ = wr.flush().await;
                }
                wr.write_all(b"0\r\n\r\n").await.is_ok()
            }
            Reply::SsePaced {
                events,
                every,
                sent,
            } => {
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
                if wr.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for ev in &events {
                    let mut c = format!("{:x}\r\n", ev.len()).into_bytes();
                    c.extend_from_slice(ev.as_bytes());
                    c.extend_from_slice(b"\r\n");
                    if wr.write_all(&c).await.is_err() || wr.flush().await.is_err() {
                        return;
                    }
                    sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(every).await;
                }
                wr.write_all(b"0\r\n\r\n").await.is_ok()
            }
            Reply::SseChunked { events, chunk } => {
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
                if wr.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let all = events.concat().into_bytes();
                for piece in all.chunks(chunk) {
                    let mut c = format!("{:x}\r\n", piece.len()).into_bytes();
                    c.extend_from_slice(piece);
                    c.extend_from_slice(b"\r\n");
                    if wr.write_all(&c).await.is_err() {
                        return;
                    }
                    let _ = wr.flush().await;
                }
                wr.write_all(b"0\r\n\r\n").await.is_ok()
            }
            Reply::Delay(..) => false,
        };
        if !keep {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Provider wire formats.

fn sse(events: Vec<String>) -> Reply {
    Reply::Sse {
        events,
        drop_after: None,
    }
}

/// OpenAI chat completion.
pub fn openai_ok(content: &str, prompt: u32, completion: u32) -> Reply {
    Reply::json(
        200,
        json!({
            "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": "up",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        }),
    )
}

/// OpenAI stream: role chunk, one chunk per piece, finish chunk, usage chunk, `[DONE]`.
pub fn openai_stream(pieces: &[&str], prompt: u32, completion: u32) -> Reply {
    let mut ev = vec![format!(
        "data: {}\n\n",
        json!({"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]})
    )];
    for p in pieces {
        ev.push(format!(
            "data: {}\n\n",
            json!({"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":p},"finish_reason":null}]})
        ));
    }
    ev.push(format!(
        "data: {}\n\n",
        json!({"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})
    ));
    ev.push(format!(
        "data: {}\n\n",
        json!({"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":prompt,"completion_tokens":completion,"total_tokens":prompt+completion}})
    ));
    ev.push("data: [DONE]\n\n".into());
    sse(ev)
}

/// [`openai_stream`] as OpenAI answers `req`: with the usage chunk only when the request asked
/// for it (`stream_options.include_usage`).
pub fn openai_stream_for(req: &Recorded, pieces: &[&str], prompt: u32, completion: u32) -> Reply {
    let mut reply = openai_stream(pieces, prompt, completion);
    if req.body["stream_options"]["include_usage"] != true
        && let Reply::Sse { events, .. } = &mut reply
    {
        events.retain(|e| !e.contains(r#""usage""#));
    }
    reply
}

/// Anthropic message.
pub fn anthropic_ok(content: &str, prompt: u32, completion: u32) -> Reply {
    Reply::json(
        200,
        json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
            "content": [{"type": "text", "text": content}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": prompt, "output_tokens": completion}
        }),
    )
}

/// Anthropic stream with its named events (and a ping), CRLF line ends.
pub fn anthropic_stream(pieces: &[&str], prompt: u32, completion: u32) -> Reply {
    let e = |name: &str, data: Value| format!("event: {name}\r\ndata: {data}\r\n\r\n");
    let mut ev = vec![
        e(
            "message_start",
            json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude","stop_reason":null,"usage":{"input_tokens":prompt,"output_tokens":1}}}),
        ),
        e(
            "content_block_start",
            json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
        ),
        e("ping", json!({"type":"ping"})),
    ];
    for p in pieces {
        ev.push(e(
            "content_block_delta",
            json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":p}}),
        ));
    }
    ev.push(e(
        "content_block_stop",
        json!({"type":"content_block_stop","index":0}),
    ));
    ev.push(e(
        "message_delta",
        json!({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":completion}}),
    ));
    ev.push(e("message_stop", json!({"type":"message_stop"})));
    sse(ev)
}

/// Anthropic message asking for one tool: a `tool_use` block (its `input` an object) and
/// `stop_reason: "tool_use"`.
pub fn anthropic_tool_use(
    id: &str,
    name: &str,
    input: Value,
    prompt: u32,
    completion: u32,
) -> Reply {
    Reply::json(
        200,
        json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
            "content": [{"type": "tool_use", "id": id, "name": name, "input": input}],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": prompt, "output_tokens": completion}
        }),
    )
}

/// Anthropic stream of one `tool_use` block as Anthropic sends it: the block starts with an
/// empty input, which then arrives as `input_json_delta` fragments (`fragments` pieces of
/// `input_json`, cut anywhere); `stop_reason: "tool_use"`.
pub fn anthropic_tool_use_stream(
    id: &str,
    name: &str,
    input_json: &str,
    fragments: usize,
    prompt: u32,
    completion: u32,
) -> Reply {
    let e = |name: &str, data: Value| format!("event: {name}\r\ndata: {data}\r\n\r\n");
    let mut ev = vec![
        e(
            "message_start",
            json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude","stop_reason":null,"usage":{"input_tokens":prompt,"output_tokens":1}}}),
        ),
        e(
            "content_block_start",
            json!({"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":id,"name":name,"input":{}}}),
        ),
        e("ping", json!({"type":"ping"})),
    ];
    for piece in split_chars(input_json, fragments) {
        ev.push(e(
            "content_block_delta",
            json!({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":piece}}),
        ));
    }
    ev.push(e(
        "content_block_stop",
        json!({"type":"content_block_stop","index":0}),
    ));
    ev.push(e(
        "message_delta",
        json!({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":completion}}),
    ));
    ev.push(e("message_stop", json!({"type":"message_stop"})));
    sse(ev)
}

/// Gemini generateContent answer.
pub fn gemini_ok(content: &str, prompt: u32, completion: u32) -> Reply {
    Reply::json(
        200,
        json!({
            "candidates": [{"content": {"parts": [{"text": content}], "role": "model"}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": prompt, "candidatesTokenCount": completion, "totalTokenCount": prompt + completion},
            "modelVersion": "gemini-2.0-flash"
        }),
    )
}

/// Gemini generateContent answer calling one function (`args` an object), with the
/// `thoughtSignature` Gemini's thinking models attach to it (a client must send it back with the
/// call in the next turn).
pub fn gemini_function_call(
    name: &str,
    args: Value,
    thought_signature: &str,
    prompt: u32,
    completion: u32,
) -> Reply {
    Reply::json(
        200,
        json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"functionCall": {"name": name, "args": args}, "thoughtSignature": thought_signature}
            ]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": prompt, "candidatesTokenCount": completion, "totalTokenCount": prompt + completion},
            "modelVersion": "gemini-2.5-flash"
        }),
    )
}

/// Gemini `streamGenerateContent?alt=sse`: partial responses, the last with finishReason and
/// usage; no end marker.
pub fn gemini_stream(pieces: &[&str], prompt: u32, completion: u32) -> Reply {
    let n = pieces.len();
    let ev = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut v = json!({"candidates":[{"content":{"parts":[{"text":p}],"role":"model"},"index":0}]});
            if i + 1 == n {
                v["candidates"][0]["finishReason"] = json!("STOP");
                v["usageMetadata"] = json!({"promptTokenCount":prompt,"candidatesTokenCount":completion,"totalTokenCount":prompt+completion});
            }
            format!("data: {v}\r\n\r\n")
        })
        .collect();
    sse(ev)
}

/// Cohere v2 chat answer.
pub fn cohere_ok(content: &str, prompt: u32, completion: u32) -> Reply {
    Reply::json(
        200,
        json!({
            "id": "c1", "finish_reason": "COMPLETE",
            "message": {"role": "assistant", "content": [{"type": "text", "text": content}]},
            "usage": {"billed_units": {"input_tokens": prompt, "output_tokens": completion}, "tokens": {"input_tokens": prompt, "output_tokens": completion}}
        }),
    )
}

/// Cohere v2 chat answer calling tools (`finish_reason: "TOOL_CALL"`, with Cohere's `tool_plan`).
pub fn cohere_tool_calls(calls: &[ToolCall<'_>], prompt: u32, completion: u32) -> Reply {
    let calls: Vec<Value> = calls.iter().map(ToolCall::json).collect();
    Reply::json(
        200,
        json!({
            "id": "c1", "finish_reason": "TOOL_CALL",
            "message": {"role": "assistant", "tool_plan": "I will call the tool.", "tool_calls": calls},
            "usage": {"billed_units": {"input_tokens": prompt, "output_tokens": completion}, "tokens": {"input_tokens": prompt, "output_tokens": completion}}
        }),
    )
}

/// Cohere v2 stream events.
pub fn cohere_stream(pieces: &[&str], prompt: u32, completion: u32) -> Reply {
    let e = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut ev = vec![
        e(
            "message-start",
            json!({"id":"c1","type":"message-start","delta":{"message":{"role":"assistant","content":[]}}}),
        ),
        e(
            "content-start",
            json!({"type":"content-start","index":0,"delta":{"message":{"content":{"type":"text","text":""}}}}),
        ),
    ];
    for p in pieces {
        ev.push(e(
            "content-delta",
            json!({"type":"content-delta","index":0,"delta":{"message":{"content":{"text":p}}}}),
        ));
    }
    ev.push(e("content-end", json!({"type":"content-end","index":0})));
    ev.push(e(
        "message-end",
        json!({"type":"message-end","delta":{"finish_reason":"COMPLETE","usage":{"billed_units":{"input_tokens":prompt,"output_tokens":completion},"tokens":{"input_tokens":prompt,"output_tokens":completion}}}}),
    ));
    sse(ev)
}

/// An OpenAI-style error body.
pub fn error(status: u16, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"error": {"message": message, "type": "error", "code": status}}),
    )
}

// Embeddings answers. Each takes the vectors to answer (one per input the test sent).

/// Distinct recognisable vectors: number `i` is `[i, i + 0.001, i + 0.002, ...]`, `dims` long,
/// so a test sees which input each vector answers (values exact through JSON and protobuf).
pub fn numbered_vectors(n: usize, dims: usize) -> Vec<Vec<f32>> {
    (0..n)
        .map(|i| (0..dims).map(|j| i as f32 + j as f32 / 1000.0).collect())
        .collect()
}

/// OpenAI embeddings answer (`POST /embeddings`), `data` listed last first with their `index`
/// (clients must order by index, not by position).
pub fn openai_embeddings(vectors: &[Vec<f32>], prompt: u32) -> Reply {
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .rev()
        .map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v}))
        .collect();
    Reply::json(
        200,
        json!({
            "object": "list", "data": data, "model": "up",
            "usage": {"prompt_tokens": prompt, "total_tokens": prompt}
        }),
    )
}

/// Cohere v2 embed answer (`POST /v2/embed` with `embedding_types: ["float"]`).
pub fn cohere_embeddings(vectors: &[Vec<f32>], input_tokens: u32) -> Reply {
    Reply::json(
        200,
        json!({
            "id": "e1",
            "embeddings": {"float": vectors},
            "texts": [],
            "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": input_tokens}},
            "response_type": "embeddings_by_type"
        }),
    )
}

/// Gemini `batchEmbedContents` answer: `embeddings[].values`, no token count.
pub fn gemini_embeddings(vectors: &[Vec<f32>]) -> Reply {
    let embeddings: Vec<Value> = vectors.iter().map(|v| json!({"values": v})).collect();
    Reply::json(200, json!({ "embeddings": embeddings }))
}

/// A function call an OpenAI-family model asks for: `id`, function `name` and `arguments` (the
/// JSON text, as OpenAI sends it).
#[derive(Debug, Clone, Copy)]
pub struct ToolCall<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub arguments: &'a str,
}

impl ToolCall<'_> {
    fn json(&self) -> Value {
        json!({"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}})
    }
}

/// OpenAI chat completion asking for tool calls: `content: null`, `finish_reason: "tool_calls"`.
pub fn openai_tool_calls(calls: &[ToolCall<'_>], prompt: u32, completion: u32) -> Reply {
    let calls: Vec<Value> = calls.iter().map(ToolCall::json).collect();
    Reply::json(
        200,
        json!({
            "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": "up",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": calls}, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        }),
    )
}

/// OpenAI stream of tool calls as OpenAI sends them: per call, a first delta with its `index`,
/// `id`, `type` and function `name` (empty arguments), then the arguments in `fragments` pieces
/// (cut anywhere, so a client must concatenate by index); then `finish_reason: "tool_calls"`, the
/// usage chunk and `[DONE]`.
pub fn openai_tool_call_stream(
    calls: &[ToolCall<'_>],
    fragments: usize,
    prompt: u32,
    completion: u32,
) -> Reply {
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id":"c","object":"chat.completion.chunk","created":1,"model":"up","choices":[{"index":0,"delta":delta,"finish_reason":finish}]})
        )
    };
    let mut ev = vec![chunk(
        json!({"role": "assistant", "content": null}),
        Value::Null,
    )];
    for (i, call) in calls.iter().enumerate() {
        ev.push(chunk(
            json!({"tool_calls": [{"index": i, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}]}),
            Value::Null,
        ));
        for piece in split_chars(call.arguments, fragments) {
            ev.push(chunk(
                json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}),
                Value::Null,
            ));
        }
    }
    ev.push(chunk(json!({}), json!("tool_calls")));
    ev.push(format!(
        "data: {}\n\n",
        json!({"id":"c","object":"chat.completion.chunk","created":1,"model":"up","choices":[],"usage":{"prompt_tokens":prompt,"completion_tokens":completion,"total_tokens":prompt+completion}})
    ));
    ev.push("data: [DONE]\n\n".into());
    sse(ev)
}

/// `s` in `n` pieces of about equal length (fewer when `s` is shorter), on character boundaries.
fn split_chars(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let size = chars.len().div_ceil(n.max(1)).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

/// Dimensions of [`openai_embeddings_for`]' vectors when the request sets no `dimensions`.
pub const EMBEDDING_DIMENSIONS: usize = 8;

/// The vector [`openai_embeddings_for`] answers for one input item (a string, or an array of token
/// ids, as received), of `dims` dimensions. Deterministic, and every value is a multiple of 1/8
/// in [-1, 1), exactly representable in f32 and in JSON, so a test can compare what a client got
/// with what the upstream sent bit for bit, whether it travelled as floats or base64.
pub fn embedding_for(item: &Value, dims: usize) -> Vec<f32> {
    // FNV-1a over the item's JSON text.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in item.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (0..dims)
        .map(|j| {
            let step = (h.rotate_left((j as u32 * 7) % 64) % 16) as u8;
            f32::from(step) / 8.0 - 1.0
        })
        .collect()
}

/// An OpenAI `/v1/embeddings` answer computed from the request `req`, as OpenAI gives it: one [`embedding_for`] vector
/// per input item (`input` a string, an array of strings, an array of token ids, or an array of
/// arrays of token ids), `dimensions` honoured, base64 (little-endian f32) when `encoding_format`
/// is `base64`; usage counts token ids, or words of strings.
pub fn openai_embeddings_for(req: &Recorded) -> Reply {
    use base64::Engine as _;
    let body = &req.body;
    let dims = body["dimensions"]
        .as_u64()
        .map_or(EMBEDDING_DIMENSIONS, |d| d as usize);
    let items: Vec<Value> = match &body["input"] {
        Value::Array(a) if a.iter().all(Value::is_number) => vec![body["input"].clone()],
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    let base64 = body["encoding_format"] == "base64";
    let mut tokens = 0;
    let data: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            tokens += match item {
                Value::Array(ids) => ids.len(),
                Value::String(s) => s.split_whitespace().count(),
                _ => 0,
            };
            let v = embedding_for(item, dims);
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    Reply::json(
        200,
        json!({
            "object": "list", "data": data, "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}
        }),
    )
}
