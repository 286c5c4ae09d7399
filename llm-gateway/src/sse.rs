//! Server-sent events parsing (the WHATWG `text/event-stream` format every provider streams in).
//!
//! The network cuts the byte stream anywhere: inside a field name, between `\r` and `\n`, inside
//! a multi-byte UTF-8 character. The parser therefore buffers bytes, never decodes before a line
//! is complete, and remembers a trailing `\r` so that a `\n` arriving in the next chunk is not
//! taken for an empty line (which would dispatch an event too early). The unit tests feed real
//! provider streams split at every byte offset.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field; empty when absent (the spec's default type is "message").
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// A line longer than this is refused: no provider sends one, and it bounds memory against a
/// broken or hostile upstream.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;
/// An event whose `data:` lines add up to more than this is refused: each line is bounded, but an
/// upstream sending `data:` lines without ever ending the event would otherwise grow the event
/// without limit.
pub const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

/// The stream broke the format badly enough to stop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TooLarge {
    #[error("server-sent event line longer than {MAX_LINE_BYTES} bytes")]
    Line,
    #[error("server-sent event data longer than {MAX_EVENT_BYTES} bytes")]
    Event,
}

/// Incremental parser: feed chunks with [`SseParser::push`], then call [`SseParser::finish`] at
/// end of stream.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// The previous chunk ended with `\r`: skip one `\n` at the start of the next.
    skip_lf: bool,
    event: String,
    data: String,
    has_data: bool,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes `chunk`, appending every completed event to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), TooLarge> {
        let mut rest = chunk;
        if self.skip_lf {
            self.skip_lf = false;
            if let Some((&b'\n', tail)) = rest.split_first() {
                rest = tail;
            }
        }
        while let Some(pos) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&rest[..pos]);
            let is_cr = rest[pos] == b'\r';
            rest = &rest[pos + 1..];
            if is_cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            if self.line.len() > MAX_LINE_BYTES {
                self.line.clear();
                return Err(TooLarge::Line);
            }
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, out);
            if self.data.len() > MAX_EVENT_BYTES {
                self.data = String::new();
                self.has_data = false;
                return Err(TooLarge::Event);
            }
        }
        self.line.extend_from_slice(rest);
        if self.line.len() > MAX_LINE_BYTES {
            self.line.clear();
            return Err(TooLarge::Line);
        }
        Ok(())
    }

    /// End of stream: a last event not followed by an empty line is still dispatched (several
    /// servers omit the final blank line).
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, out);
        }
        self.dispatch(out);
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            return; // comment / keep-alive
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&value);
                self.has_data = true;
            }
            b"event" => self.event = value.into_owned(),
            _ => {} // id, retry and unknown fields do not matter here
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.has_data {
            out.push(SseEvent {
                event: std::mem::take(&mut self.event),
                data: std::mem::take(&mut self.data),
            });
        } else {
            self.event.clear();
        }
        self.has_data = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_whole(input: &[u8]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        assert!(p.push(input, &mut out).is_ok());
        p.finish(&mut out);
        out
    }

    fn parse_split_everywhere(input: &[u8]) {
        let whole = parse_whole(input);
        for cut in 0..=input.len() {
            let mut p = SseParser::new();
            let mut out = Vec::new();
            assert!(p.push(&input[..cut], &mut out).is_ok());
            assert!(p.push(&input[cut..], &mut out).is_ok());
            p.finish(&mut out);
            assert_eq!(out, whole, "split at byte {cut}");
        }
        // and byte by byte
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for b in input {
            assert!(p.push(std::slice::from_ref(b), &mut out).is_ok());
        }
        p.finish(&mut out);
        assert_eq!(out, whole, "byte by byte");
    }

    const OPENAI: &str = "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n\
data: {\"choices\":[{\"delta\":{\"content\":\"Bonjour é ✓ 🚀\"}}]}\n\n\
: keep-alive\n\n\
data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n\
data: [DONE]\n\n";

    const ANTHROPIC_CRLF: &str = "event: message_start\r\ndata: {\"type\":\"message_start\"}\r\n\r\n\
event: ping\r\ndata: {\"type\": \"ping\"}\r\n\r\n\
event: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"héllo\"}}\r\n\r\n\
event: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n";

    #[test]
    fn openai_stream_survives_every_split() {
        let events = parse_whole(OPENAI.as_bytes());
        assert_eq!(events.len(), 4);
        assert_eq!(events[3].data, "[DONE]");
        assert!(events[1].data.contains("Bonjour é ✓ 🚀"));
        parse_split_everywhere(OPENAI.as_bytes());
    }

    #[test]
    fn crlf_and_event_names_survive_every_split() {
        let events = parse_whole(ANTHROPIC_CRLF.as_bytes());
        let names: Vec<_> = events.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "ping",
                "content_block_delta",
                "message_stop"
            ]
        );
        assert!(events[2].data.contains("héllo"));
        parse_split_everywhere(ANTHROPIC_CRLF.as_bytes());
    }

    #[test]
    fn bare_cr_multiline_data_and_missing_final_blank_line() {
        let input = b"data: a\rdata: b\r\revent: x\ndata:c\n\ndata: last";
        let events = parse_whole(input);
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: String::new(),
                    data: "a\nb".into()
                },
                SseEvent {
                    event: "x".into(),
                    data: "c".into()
                },
                SseEvent {
                    event: String::new(),
                    data: "last".into()
                },
            ]
        );
        parse_split_everywhere(input);
    }

    #[test]
    fn event_without_data_is_not_dispatched() {
        let events = parse_whole(b"event: ping\n\n: comment\n\n");
        assert!(events.is_empty());
    }

    #[test]
    fn overlong_line_is_refused() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        let big = vec![b'a'; MAX_LINE_BYTES + 1];
        assert_eq!(p.push(&big, &mut out), Err(TooLarge::Line));
    }

    #[test]
    fn endless_data_lines_stop_at_the_bound() {
        // Every line is short, the event never ends: the parser stops at MAX_EVENT_BYTES instead
        // of buffering forever.
        let mut p = SseParser::new();
        let mut out = Vec::new();
        let line = format!("data: {}\n", "x".repeat(1000));
        let mut fed = 0usize;
        let result = loop {
            let r = p.push(line.as_bytes(), &mut out);
            fed += line.len();
            if r.is_err() || fed > 2 * MAX_EVENT_BYTES {
                break r;
            }
        };
        assert_eq!(result, Err(TooLarge::Event));
        // The bound is on the data kept; what was fed also holds each line's `data: ` prefix.
        let kept_per_line = line.len() - "data: ".len();
        let lines = fed / line.len();
        assert!(
            lines * kept_per_line <= MAX_EVENT_BYTES + 2 * kept_per_line,
            "stopped only after {lines} lines"
        );
        assert!(out.is_empty());
    }
}
