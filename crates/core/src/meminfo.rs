//! `/proc/meminfo`: what the health check judges and how much memory a restore may hold.

use std::path::Path;

use crate::{Error, Result};

/// The fields vigia reads, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meminfo {
    pub total: u64,
    pub available: u64,
    pub swap_total: u64,
    pub swap_free: u64,
}

impl Meminfo {
    /// This host's, now.
    pub fn read() -> Result<Self> {
        let path = Path::new("/proc/meminfo");
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self> {
        let field = |name: &str| -> Result<u64> {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
                .ok_or_else(|| Error::internal(format!("/proc/meminfo has no {name}")))
        };
        Ok(Self {
            total: field("MemTotal")?,
            available: field("MemAvailable")?,
            swap_total: field("SwapTotal")?,
            swap_free: field("SwapFree")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_parses_as_the_kernel_writes_it() {
        let text = "MemTotal:       24576000 kB\nMemFree:  100 kB\nMemAvailable:   12000000 kB\n\
                    SwapTotal:             0 kB\nSwapFree:              0 kB\n";
        let m = Meminfo::parse(text).unwrap();
        assert_eq!(
            (m.total, m.available, m.swap_total),
            (24_576_000, 12_000_000, 0)
        );
        assert!(Meminfo::parse("MemTotal: 1 kB\n").is_err());
        assert!(Meminfo::read().unwrap().total > 0);
    }
}
