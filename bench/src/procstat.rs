//! What the kernel counts for a process: CPU time and resident memory, read from `/proc` (Linux;
//! zero elsewhere). The benchmarks divide CPU time by requests: less sensitive than latency to
//! other load on a shared machine.

use std::time::Duration;

/// User + system CPU time of process `pid` (`"self"` for this one), all its threads, so far.
pub fn cpu_of(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the ')'; Linux reports
    // them in USER_HZ, which is 100 on every architecture it supports.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Resident memory of process `pid` in KiB (`VmRSS`), 0 when unknown.
pub fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The processes whose parent is `pid` (nginx's workers under its master).
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            // Field 4 of the line (the parent) is the second after the ')'.
            rest.split_whitespace().nth(1) == Some(&pid.to_string())
        })
        .collect()
}
