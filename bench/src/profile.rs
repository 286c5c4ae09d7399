//! Where a service's CPU goes, by kind of work: `perf record` (cpu-clock samples, no call graph)
//! on a running process, then each sample's function put in one of a few categories — the
//! kernel's network stack, its scheduler, its system-call and epoll entry, the async runtime,
//! HTTP/2, gRPC and protobuf, JSON, the allocator, the database, our own code... The `deployed`
//! benchmark multiplies each category's share by the service's CPU per request, so a row reads
//! "µs per request spent in TCP on loopback", which is what says whether the floor of a path is
//! ours to lower.
//!
//! A flat profile attributes a sample to the function running, not to its caller: the kernel's
//! TCP time is the cost of the bytes our processes exchange, the allocator's that of whoever
//! allocates. That is the floor's explanation, not a call tree.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Samples per second and per CPU: enough for a few thousand samples a row, little overhead.
const FREQUENCY: &str = "1999";

/// Starts `perf record` on `pid` for `seconds`, writing `out`.
pub fn record(pid: &str, seconds: u64, out: &Path) -> Result<Child, String> {
    Command::new("perf")
        .args([
            "record",
            "-q",
            "-e",
            "cpu-clock",
            "-F",
            FREQUENCY,
            "-p",
            pid,
            "-o",
        ])
        .arg(out)
        .args(["--", "sleep", &seconds.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("perf: {e} (install Debian's linux-perf)"))
}

/// The share of samples (0 to 1) per category of the recording at `data`.
pub fn breakdown(data: &Path) -> Result<BTreeMap<&'static str, f64>, String> {
    let out = Command::new("perf")
        .args([
            "report",
            "--stdio",
            "--no-children",
            "--percent-limit",
            "0",
            "--sort",
            "dso,sym",
            "-i",
        ])
        .arg(data)
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("perf report: {e}"))?;
    if !out.status.success() {
        return Err(format!("perf report failed on {}", data.display()));
    }
    let mut shares: BTreeMap<&'static str, f64> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((percent, dso, symbol)) = parse_line(line) {
            *shares.entry(category(dso, symbol)).or_default() += percent / 100.0;
        }
    }
    Ok(shares)
}

/// `    18.48%  libc.so.6  [.] __strcmp_evex` → (18.48, "libc.so.6", "__strcmp_evex").
fn parse_line(line: &str) -> Option<(f64, &str, &str)> {
    let line = line.trim_start();
    let (percent, rest) = line.split_once('%')?;
    let percent: f64 = percent.parse().ok()?;
    let rest = rest.trim_start();
    let (dso, rest) = rest.split_once(char::is_whitespace)?;
    let rest = rest.trim_start();
    // `[.]` user space, `[k]` kernel.
    let symbol = rest.get(3..).unwrap_or_default().trim();
    Some((percent, dso, symbol))
}

/// The categories, in the order the benchmark prints them.
pub const CATEGORIES: [&str; 14] = [
    "kernel: network (TCP on loopback)",
    "kernel: scheduler, wake-ups, futex",
    "kernel: syscall entry, epoll, other",
    "async runtime (tokio)",
    "HTTP/2 and HTTP (h2, hyper, reqwest, bytes)",
    "gRPC and protobuf (tonic, prost)",
    "JSON (serde_json)",
    "allocators (mimalloc; glibc's for SQLite)",
    "memory copies (libc)",
    "database (sqlx, SQLite)",
    "observability (tracing, metrics)",
    "our code",
    "Rust std and other crates",
    "other (libc, unknown)",
];

/// Kernel functions of the network path (loopback TCP, sockets, packet handling).
const KERNEL_NET: &[&str] = &[
    "tcp",
    "ip_",
    "ipv",
    "inet",
    "sock",
    "skb",
    "sk_",
    "__sk",
    "net_",
    "__net",
    "napi",
    "dev_",
    "__dev",
    "loopback",
    "netif",
    "__netif",
    "nf_",
    "raw_",
    "__ip",
    "__tcp",
    "__inet",
    "__skb",
    "__sock",
    "__sys_sendto",
    "__sys_recvfrom",
    "__sys_sendmsg",
    "__sys_recvmsg",
    "sendmsg",
    "recvmsg",
    "release_sock",
    "lock_sock",
    "validate_xmit",
    "do_softirq",
    "__do_softirq",
    "process_backlog",
    "__napi",
    "__local_bh_enable",
    "csum",
    "dst_",
    "neigh",
    "__copy_skb",
    "copy_user",
    "_copy_to_iter",
    "_copy_from_iter",
    "copyout",
    "copyin",
    "rep_movs",
    "__check_object",
    "check_heap_object",
    "__virt_addr_valid",
    "simple_copy_to_iter",
    "skb_",
];

/// Kernel functions of scheduling: switching threads, waking them, futexes.
const KERNEL_SCHED: &[&str] = &[
    "schedule",
    "__schedule",
    "finish_task_switch",
    "try_to_wake_up",
    "ttwu",
    "futex",
    "__futex",
    "enqueue",
    "dequeue",
    "pick_next",
    "update_curr",
    "update_load",
    "select_task_rq",
    "wake_up",
    "__wake_up",
    "autoremove_wake",
    "default_wake",
    "psi_",
    "sched_",
    "__switch_to",
    "switch_mm",
    "native_sched",
    "hrtimer",
    "clock_",
    "ktime",
    "__x64_sys_futex",
    "do_futex",
    "raw_spin",
    "_raw_spin",
    "queued_spin",
    "set_next_entity",
    "put_prev",
    "check_preempt",
    "resched",
    "idle",
    "cpuidle",
    "tick_",
    "account_",
];

/// Crates by the path prefix of their functions (earliest match in the symbol wins, std
/// excepted: `core::ptr::drop_in_place<h2::…>` is h2's).
const CRATES: &[(&str, &str)] = &[
    ("tokio::", "async runtime (tokio)"),
    ("mio::", "async runtime (tokio)"),
    ("h2::", "HTTP/2 and HTTP (h2, hyper, reqwest, bytes)"),
    ("hyper::", "HTTP/2 and HTTP (h2, hyper, reqwest, bytes)"),
    (
        "hyper_util::",
        "HTTP/2 and HTTP (h2, hyper, reqwest, bytes)",
    ),
    ("http::", "HTTP/2 and HTTP (h2, hyper, reqwest, bytes)"),
    ("httparse::", "HTTP/2 and HTTP (h2, hyper, reqwest, bytes)"),
    ("http_body", "HTTP/2 and HTTP (h2, hyper, reqwest, bytes)"),
    ("reqwest::", "HTTP/2 and HTTP (h2, hyper, reqwest, bytes)"),
    ("bytes::", "HTTP/2 and HTTP (h2, hyper, reqwest, bytes)"),
    ("futures", "async runtime (tokio)"),
    ("flume::", "database (sqlx, SQLite)"),
    ("axum::", "HTTP/2 and HTTP (h2, hyper, reqwest, bytes)"),
    ("tower::", "HTTP/2 and HTTP (h2, hyper, reqwest, bytes)"),
    (
        "tower_http::",
        "HTTP/2 and HTTP (h2, hyper, reqwest, bytes)",
    ),
    ("tonic::", "gRPC and protobuf (tonic, prost)"),
    ("prost::", "gRPC and protobuf (tonic, prost)"),
    ("serde_json::", "JSON (serde_json)"),
    ("sqlx", "database (sqlx, SQLite)"),
    ("libsqlite3", "database (sqlx, SQLite)"),
    ("tracing", "observability (tracing, metrics)"),
    ("prometheus_client::", "observability (tracing, metrics)"),
    ("llm_gateway::", "our code"),
    ("gateway_rest::", "our code"),
    ("promo_service::", "our code"),
    ("iafactory::", "our code"),
];

fn category(dso: &str, symbol: &str) -> &'static str {
    if dso.starts_with("[kernel") {
        let s = symbol.trim_start_matches("__x64_sys_");
        if KERNEL_SCHED
            .iter()
            .any(|p| symbol.starts_with(p) || s.starts_with(p))
        {
            return CATEGORIES[1];
        }
        if KERNEL_NET
            .iter()
            .any(|p| symbol.starts_with(p) || s.starts_with(p))
        {
            return CATEGORIES[0];
        }
        return CATEGORIES[2];
    }
    if symbol.starts_with("mi_") || symbol.starts_with("_mi_") {
        return CATEGORIES[7];
    }
    // SQLite's C functions (its JSON ones read the request log's batches).
    if symbol.starts_with("sqlite3") || symbol.starts_with("json") {
        return CATEGORIES[9];
    }
    if dso.starts_with("libc") {
        // Rust allocates through mimalloc; glibc's malloc is SQLite's (C code).
        const MALLOC: &[&str] = &["malloc", "free", "realloc", "calloc", "_int_", "cfree"];
        return if symbol.contains("memcpy")
            || symbol.contains("memmove")
            || symbol.contains("memset")
        {
            CATEGORIES[8]
        } else if MALLOC.iter().any(|m| symbol.starts_with(m)) {
            CATEGORIES[7]
        } else {
            CATEGORIES[13]
        };
    }
    let earliest = CRATES
        .iter()
        .filter_map(|(prefix, cat)| symbol.find(prefix).map(|at| (at, *cat)))
        .min_by_key(|(at, _)| *at);
    match earliest {
        Some((_, cat)) => cat,
        None if symbol.contains("::") => CATEGORIES[12],
        None => CATEGORIES[13],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_categories() {
        assert_eq!(
            parse_line("    18.48%  libc.so.6         [.] __memmove_avx_unaligned_erms"),
            Some((18.48, "libc.so.6", "__memmove_avx_unaligned_erms"))
        );
        assert_eq!(parse_line("# Samples: 184"), None);
        let cat = |dso, sym| category(dso, sym);
        assert_eq!(
            cat("[kernel.kallsyms]", "tcp_sendmsg_locked"),
            CATEGORIES[0]
        );
        assert_eq!(
            cat("[kernel.kallsyms]", "finish_task_switch.isra.0"),
            CATEGORIES[1]
        );
        assert_eq!(cat("[kernel.kallsyms]", "ep_poll_callback"), CATEGORIES[2]);
        assert_eq!(
            cat(
                "llm-gateway",
                "core::ptr::drop_in_place<h2::proto::streams::Stream>"
            ),
            CATEGORIES[4]
        );
        assert_eq!(
            cat(
                "llm-gateway",
                "<tonic::codec::prost::ProstDecoder<U> as tonic::codec::Decoder>::decode"
            ),
            CATEGORIES[5]
        );
        assert_eq!(cat("gateway-rest", "mi_malloc_aligned"), CATEGORIES[7]);
        assert_eq!(
            cat(
                "llm-gateway",
                "llm_gateway::usage::UsageRecorder::charge::{{closure}}"
            ),
            CATEGORIES[11]
        );
        assert_eq!(cat("llm-gateway", "sqlite3VdbeExec"), CATEGORIES[9]);
        assert_eq!(cat("llm-gateway", "jsonTranslateBlobToText"), CATEGORIES[9]);
        assert_eq!(cat("libc.so.6", "_int_free"), CATEGORIES[7]);
        assert_eq!(
            cat("llm-gateway", "bytes::bytes::shared_drop"),
            CATEGORIES[4]
        );
        assert_eq!(
            cat("libc.so.6", "__memmove_avx_unaligned_erms"),
            CATEGORIES[8]
        );
        assert_eq!(
            cat("llm-gateway", "alloc::raw_vec::finish_grow"),
            CATEGORIES[12]
        );
    }
}
