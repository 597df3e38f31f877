//! A process's memory as Linux reports it in `/proc/<pid>/status`.

/// Field `field` of `pid`'s status (`"VmRSS:"` resident now, `"VmHWM:"`
/// its peak since start), in KiB; 0 if the process is gone.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
