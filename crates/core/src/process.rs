//! Child processes that must not outlive vigia.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// `text` as one word for `sh` (a command line vigia fills in, or prints for the operator to
/// paste).
pub fn shell_quote(text: &str) -> String {
    let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-');
    if !text.is_empty() && text.bytes().all(plain) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// Makes the child get SIGKILL when the thread that spawns it exits, so a killed vigia
/// leaves no orphan pg_dump or server. Spawn from a thread that lives as long as the child
/// (not tokio's blocking pool, whose idle threads retire).
pub fn die_with_parent(command: &mut Command) {
    signal_on_parent_death(command, libc::SIGKILL);
}

/// Makes the child get `signal` when the thread that spawns it exits (see
/// [`die_with_parent`]); a shell that traps it can then take its own children down too.
#[allow(unsafe_code)]
pub fn signal_on_parent_death(command: &mut Command, signal: i32) {
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2),
    // which is async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Lowers the calling thread's CPU priority to nice 10, like the pg_dump it feeds: the
/// compression and encryption of a backup must not take CPU from the Odoo serving invoices.
/// (On Linux, nice is per thread.) Failure is harmless and ignored.
#[allow(unsafe_code)]
pub fn lower_thread_priority() {
    // SAFETY: setpriority(2) on the calling thread (who = 0) with a plain integer; it touches
    // no memory of ours.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

/// Whether process `pid` runs in this pid namespace. A zombie (dead, not yet reaped) does
/// not; a pid that exists but whose /proc entry cannot be read (hidepid, another user's
/// process) does: kill(2) with signal 0 tells, ESRCH meaning no such process.
#[allow(unsafe_code)]
pub fn is_running(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if raw <= 0 {
        return false;
    }
    // SAFETY: kill(2) with signal 0 only checks that the pid exists; it touches no memory.
    if unsafe { libc::kill(raw, 0) } == -1
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    {
        return false;
    }
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_or(true, |line| parse_start(&line).is_some())
}

/// Sends `signal` to the process group led by `pid`.
#[allow(unsafe_code)]
pub fn signal_group(pid: u32, signal: i32) -> std::io::Result<()> {
    let group = i32::try_from(pid)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: kill(2) with plain integers; it touches no memory of ours.
    if unsafe { libc::kill(-group, signal) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// This process's effective user id (who owns what it creates, whose files it trusts).
#[allow(unsafe_code)]
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) takes nothing, always succeeds and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// Who a writer is, precisely enough to say it is dead: host name alone misjudges containers
/// that share the host's name (their pids live in another namespace), and a pid alone is
/// reused after it exits or after a reboot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessIdentity {
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub pid: u32,
    /// The kernel's boot id: a record from before a reboot (or from a machine with the same
    /// host name) is never judged from this machine's process table.
    #[serde(default)]
    pub boot_id: String,
    /// The pid namespace, `pid:[4026531836]`: a container's pids mean nothing outside it.
    #[serde(default)]
    pub pid_ns: String,
    /// When the process started, in clock ticks after boot: tells a reused pid apart.
    #[serde(default)]
    pub start_ticks: u64,
}

impl ProcessIdentity {
    /// This process (read from /proc once).
    pub fn current() -> Self {
        static CURRENT: std::sync::OnceLock<ProcessIdentity> = std::sync::OnceLock::new();
        CURRENT
            .get_or_init(|| {
                let pid = std::process::id();
                Self {
                    host: hostname(),
                    pid,
                    boot_id: boot_id(),
                    pid_ns: pid_namespace(),
                    start_ticks: start_ticks(pid).unwrap_or(0),
                }
            })
            .clone()
    }

    /// Provably gone: recorded on this machine, in this boot and this pid namespace, and its
    /// pid is free or now belongs to a process that started at another time. Anything less
    /// certain (another host, a record without boot id) is alive as far as we know.
    pub fn is_gone(&self) -> bool {
        self.is_judged_here() && pid_is_gone(self.pid, self.start_ticks)
    }

    /// Whether this machine's process table can judge it: same host, boot and pid namespace.
    pub fn is_judged_here(&self) -> bool {
        let here = Self::current();
        !self.boot_id.is_empty()
            && self.host == here.host
            && self.boot_id == here.boot_id
            && self.pid_ns == here.pid_ns
    }

    /// A short name for this identity's machine, boot and namespace, safe in a file name.
    pub fn machine_token(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(
            format!("{}\n{}\n{}", self.host, self.boot_id, self.pid_ns).as_bytes(),
        );
        hex::encode(&digest[..8])
    }
}

/// This machine's host name (`unknown` when it cannot be read).
pub fn hostname() -> String {
    read_trimmed("/proc/sys/kernel/hostname").unwrap_or_else(|| "unknown".to_owned())
}

fn boot_id() -> String {
    read_trimmed("/proc/sys/kernel/random/boot_id").unwrap_or_default()
}

fn pid_namespace() -> String {
    std::fs::read_link("/proc/self/ns/pid")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Whether process `pid`, started at `start` (clock ticks after boot), is gone from this pid
/// namespace: not running (see `is_running`), or a pid reused by a process that started at
/// another time.
pub fn pid_is_gone(pid: u32, start: u64) -> bool {
    !is_running(pid) || start_ticks(pid).is_some_and(|s| s != start)
}

/// The resident memory of every process in process group `pgid` (a service's main process
/// and its workers), in bytes; 0 when none runs.
pub fn group_rss_bytes(pgid: u32) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| parse_pgrp(&stat))
                == Some(pgid)
        })
        .filter_map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let kib = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()?;
            Some(kib * 1024)
        })
        .sum()
}

/// The process group in a /proc/<pid>/stat line (field 5).
fn parse_pgrp(stat: &str) -> Option<u32> {
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    fields.nth(2)?.parse().ok()
}

/// The start time in a /proc/<pid>/stat line, or None for a zombie.
fn parse_start(stat: &str) -> Option<u64> {
    // Fields after the command name (in parentheses, may hold spaces): state is field 3,
    // starttime field 22.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// When process `pid` started (clock ticks after boot), or None when it is not running
/// (a zombie is not).
pub fn start_ticks(pid: u32) -> Option<u64> {
    parse_start(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_the_shell() {
        assert_eq!(
            shell_quote("/srv/odoo/releases/v1"),
            "/srv/odoo/releases/v1"
        );
        assert_eq!(shell_quote("/srv/my odoo"), "'/srv/my odoo'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn a_process_groups_memory_is_the_sum_of_its_members() {
        let stat = "4242 (odoo (worker)) S 1 4242 4242 0 -1 4194560 ...";
        assert_eq!(parse_pgrp(stat), Some(4242));
        let mine = group_rss_bytes(own_pgid());
        assert!(
            mine > 1024 * 1024,
            "this test's own group uses memory: {mine}"
        );
        assert_eq!(group_rss_bytes(u32::MAX), 0);
    }

    /// This process's group, read the way the code reads others'.
    fn own_pgid() -> u32 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        parse_pgrp(&stat).unwrap()
    }

    #[test]
    fn this_process_is_alive_and_a_reused_or_foreign_pid_is_judged_right() {
        let me = ProcessIdentity::current();
        assert!(!me.boot_id.is_empty() && me.pid_ns.starts_with("pid:"));
        assert!(me.start_ticks > 0);
        assert!(!me.is_gone());
        let reused = ProcessIdentity {
            start_ticks: me.start_ticks + 1,
            ..me.clone()
        };
        assert!(reused.is_gone(), "same pid, another start time");
        let free = ProcessIdentity {
            pid: 999_999_999,
            ..me.clone()
        };
        assert!(free.is_gone());
        let container = ProcessIdentity {
            pid_ns: "pid:[1]".into(),
            ..free.clone()
        };
        assert!(
            !container.is_gone(),
            "another pid namespace is not judged here"
        );
        let before_reboot = ProcessIdentity {
            boot_id: "another-boot".into(),
            ..free.clone()
        };
        assert!(!before_reboot.is_gone());
        assert!(is_running(std::process::id()));
        assert!(
            is_running(1),
            "init runs, even where its /proc entry is hidden"
        );
        assert!(!is_running(999_999_999));
        let old_record = ProcessIdentity {
            boot_id: String::new(),
            ..free
        };
        assert!(!old_record.is_gone());
    }
}
