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
pub fn breakdown(data: &Path) -> Result<BTreeMap<Category, f64>, String> {
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
    let mut shares: BTreeMap<Category, f64> = BTreeMap::new();
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

/// What a sample's function is busy with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Category {
    KernelNetwork,
    KernelScheduler,
    KernelOther,
    Runtime,
    Http,
    Grpc,
    Json,
    Allocators,
    Copies,
    Database,
    Observability,
    Ours,
    RustOther,
    Other,
}

impl Category {
    /// Every category, in the order the benchmark prints them.
    pub const ALL: [Category; 14] = [
        Category::KernelNetwork,
        Category::KernelScheduler,
        Category::KernelOther,
        Category::Runtime,
        Category::Http,
        Category::Grpc,
        Category::Json,
        Category::Allocators,
        Category::Copies,
        Category::Database,
        Category::Observability,
        Category::Ours,
        Category::RustOther,
        Category::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Category::KernelNetwork => "kernel: network (TCP on loopback)",
            Category::KernelScheduler => "kernel: scheduler, wake-ups, futex",
            Category::KernelOther => "kernel: syscall entry, epoll, other",
            Category::Runtime => "async runtime (tokio)",
            Category::Http => "HTTP/2 and HTTP (h2, hyper, reqwest, bytes)",
            Category::Grpc => "gRPC and protobuf (tonic, prost)",
            Category::Json => "JSON (serde_json)",
            Category::Allocators => "allocators (mimalloc; glibc's for SQLite)",
            Category::Copies => "memory copies (libc)",
            Category::Database => "database (sqlx, SQLite)",
            Category::Observability => "observability (tracing, metrics)",
            Category::Ours => "our code",
            Category::RustOther => "Rust std and other crates",
            Category::Other => "other (libc, unknown)",
        }
    }
}

/// Kernel functions of the network path (loopback TCP, sockets, packet handling, the copies to
/// and from user space), by name prefix.
const KERNEL_NET: &[&str] = &[
    "tcp",
    "__tcp",
    "ip_",
    "__ip",
    "ipv",
    "inet",
    "__inet",
    "sock",
    "__sock",
    "skb",
    "__skb",
    "sk_",
    "__sk",
    "net_",
    "__net",
    "napi",
    "__napi",
    "dev_",
    "__dev",
    "loopback",
    "netif",
    "__netif",
    "nf_",
    "raw_",
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
    "__local_bh_enable",
    "csum",
    "dst_",
    "neigh",
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
];

/// Kernel functions of scheduling: switching threads, waking them, futexes (system-call entry
/// points are matched without their `__x64_sys_` prefix).
const KERNEL_SCHED: &[&str] = &[
    "schedule",
    "__schedule",
    "finish_task_switch",
    "try_to_wake_up",
    "ttwu",
    "futex",
    "__futex",
    "do_futex",
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
    "_raw_spin",
    "queued_spin",
    "set_next_entity",
    "put_prev",
    "check_preempt",
    "resched",
    "tick_",
    "account_",
];

/// Crates by the path prefix of their functions (earliest match in the symbol wins, std
/// excepted: `core::ptr::drop_in_place<h2::…>` is h2's).
const CRATES: &[(&str, Category)] = &[
    ("tokio::", Category::Runtime),
    ("mio::", Category::Runtime),
    ("futures", Category::Runtime),
    ("h2::", Category::Http),
    ("hyper::", Category::Http),
    ("hyper_util::", Category::Http),
    ("http::", Category::Http),
    ("httparse::", Category::Http),
    ("http_body", Category::Http),
    ("reqwest::", Category::Http),
    ("bytes::", Category::Http),
    ("axum::", Category::Http),
    ("tower::", Category::Http),
    ("tower_http::", Category::Http),
    ("tonic::", Category::Grpc),
    ("prost::", Category::Grpc),
    ("serde_json::", Category::Json),
    ("sqlx", Category::Database),
    ("libsqlite3", Category::Database),
    ("flume::", Category::Database),
    ("tracing", Category::Observability),
    ("prometheus_client::", Category::Observability),
    ("llm_gateway::", Category::Ours),
    ("gateway_rest::", Category::Ours),
    ("promo_service::", Category::Ours),
    ("iafactory::", Category::Ours),
];

fn category(dso: &str, symbol: &str) -> Category {
    let starts = |prefixes: &[&str], s: &str| prefixes.iter().any(|p| s.starts_with(p));
    if dso.starts_with("[kernel") {
        let name = symbol.trim_start_matches("__x64_sys_");
        return if starts(KERNEL_SCHED, name) {
            Category::KernelScheduler
        } else if starts(KERNEL_NET, symbol) || starts(KERNEL_NET, name) {
            Category::KernelNetwork
        } else {
            Category::KernelOther
        };
    }
    if starts(&["mi_", "_mi_"], symbol) {
        return Category::Allocators;
    }
    // SQLite's C functions (its JSON ones read the request log's batches).
    if starts(&["sqlite3", "json"], symbol) {
        return Category::Database;
    }
    if dso.starts_with("libc") {
        return if ["memcpy", "memmove", "memset"]
            .iter()
            .any(|m| symbol.contains(m))
        {
            Category::Copies
        } else if starts(
            &["malloc", "free", "realloc", "calloc", "_int_", "cfree"],
            symbol,
        ) {
            // Rust allocates through mimalloc; glibc's malloc is SQLite's (C code).
            Category::Allocators
        } else {
            Category::Other
        };
    }
    let earliest = CRATES
        .iter()
        .filter_map(|(prefix, cat)| symbol.find(prefix).map(|at| (at, *cat)))
        .min_by_key(|(at, _)| *at);
    match earliest {
        Some((_, cat)) => cat,
        None if symbol.contains("::") => Category::RustOther,
        None => Category::Other,
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
            Category::KernelNetwork
        );
        assert_eq!(
            cat("[kernel.kallsyms]", "finish_task_switch.isra.0"),
            Category::KernelScheduler
        );
        assert_eq!(
            cat("[kernel.kallsyms]", "ep_poll_callback"),
            Category::KernelOther
        );
        assert_eq!(
            cat(
                "llm-gateway",
                "core::ptr::drop_in_place<h2::proto::streams::Stream>"
            ),
            Category::Http
        );
        assert_eq!(
            cat(
                "llm-gateway",
                "<tonic::codec::prost::ProstDecoder<U> as tonic::codec::Decoder>::decode"
            ),
            Category::Grpc
        );
        assert_eq!(
            cat("gateway-rest", "mi_malloc_aligned"),
            Category::Allocators
        );
        assert_eq!(
            cat(
                "llm-gateway",
                "llm_gateway::usage::UsageRecorder::charge::{{closure}}"
            ),
            Category::Ours
        );
        assert_eq!(cat("llm-gateway", "sqlite3VdbeExec"), Category::Database);
        assert_eq!(
            cat("llm-gateway", "jsonTranslateBlobToText"),
            Category::Database
        );
        assert_eq!(cat("libc.so.6", "_int_free"), Category::Allocators);
        assert_eq!(
            cat("llm-gateway", "bytes::bytes::shared_drop"),
            Category::Http
        );
        assert_eq!(
            cat("libc.so.6", "__memmove_avx_unaligned_erms"),
            Category::Copies
        );
        assert_eq!(
            cat("llm-gateway", "alloc::raw_vec::finish_grow"),
            Category::RustOther
        );
    }
}
