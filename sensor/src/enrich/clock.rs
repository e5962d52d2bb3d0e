//! Kernel timestamps (CLOCK_BOOTTIME ns) to wall-clock RFC 3339.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::time::{ClockId, clock_gettime};

/// Converts boot-time nanoseconds to wall-clock time. The offset is
/// re-measured by [`BootClock::resync`] so that NTP steps are followed.
#[derive(Debug, Clone, Copy)]
pub struct BootClock {
    /// realtime - boottime, in ns.
    offset_ns: i128,
}

impl Default for BootClock {
    fn default() -> Self {
        let mut c = BootClock { offset_ns: 0 };
        c.resync();
        c
    }
}

impl BootClock {
    /// Re-measures the offset. The wall clock is read between two reads
    /// of boot time, and the tightest of a few tries is kept: a thread
    /// preempted between two plain reads (a loaded host) would put every
    /// timestamp off by the time it waited, until the next resync (15 ms
    /// was seen between two sensors in CI).
    pub fn resync(&mut self) {
        /// A pair read this close is as good as it gets (vDSO reads take
        /// tens of ns).
        const TIGHT_NS: i128 = 20_000;
        const TRIES: usize = 8;
        let ns = |id| {
            clock_gettime(id)
                .map(|t| i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec()))
                .unwrap_or_default()
        };
        let mut best: Option<(i128, i128)> = None;
        for _ in 0..TRIES {
            let before = ns(ClockId::CLOCK_BOOTTIME);
            let wall = ns(ClockId::CLOCK_REALTIME);
            let after = ns(ClockId::CLOCK_BOOTTIME);
            let gap = after - before;
            let offset = wall - (before + gap / 2);
            if best.is_none_or(|(g, _)| gap < g) {
                best = Some((gap, offset));
            }
            if gap <= TIGHT_NS {
                break;
            }
        }
        if let Some((_, offset)) = best {
            self.offset_ns = offset;
        }
    }

    pub fn wall(&self, boot_ns: u64) -> SystemTime {
        let ns = i128::from(boot_ns) + self.offset_ns;
        let ns = u64::try_from(ns.max(0)).unwrap_or(u64::MAX);
        UNIX_EPOCH + Duration::from_nanos(ns)
    }

    pub fn rfc3339(&self, boot_ns: u64) -> String {
        humantime::format_rfc3339_nanos(self.wall(boot_ns)).to_string()
    }

    pub fn now_boot_ns() -> u64 {
        clock_gettime(ClockId::CLOCK_BOOTTIME)
            .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_in_boot_time_maps_to_now_in_wall_time() {
        let c = BootClock::default();
        let wall = c.wall(BootClock::now_boot_ns());
        let drift = SystemTime::now()
            .duration_since(wall)
            .unwrap_or_else(|e| e.duration());
        assert!(drift < Duration::from_secs(1), "drift {drift:?}");
        let s = c.rfc3339(BootClock::now_boot_ns());
        assert!(
            s.ends_with('Z') && s.len() == 30,
            "RFC 3339 with ns, UTC: {s}"
        );
    }
}
