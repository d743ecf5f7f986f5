//! What the benchmarks read from Linux's `/proc` to tell a slow pipeline from a
//! crowded machine: which process is the broker, and how long each thread of a
//! process ran and waited for a CPU.
//!
//! ```no_run
//! use event_bus_tests::proc_stats::thread_schedstats;
//! let threads = thread_schedstats("self").unwrap_or_default();
//! let ran: u64 = threads.iter().map(|t| t.ran_nanos).sum();
//! println!("this process ran {ran} ns");
//! ```

use std::path::Path;

/// One thread's scheduler times, from `/proc/{pid}/task/{id}/schedstat`.
///
/// See the module's example.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadSched {
    /// The thread's id.
    pub id: u32,
    /// Nanoseconds it ran on a CPU.
    pub ran_nanos: u64,
    /// Nanoseconds it was runnable but waited on a run queue.
    pub waited_nanos: u64,
}

/// The scheduler times of the threads of process `pid` (`self` for this one) alive
/// now; threads that ended are not there. `None` where `/proc` does not give them.
///
/// See the module's example.
pub fn thread_schedstats(pid: &str) -> Option<Vec<ThreadSched>> {
    let mut threads = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let Some(id) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("schedstat")) else {
            continue;
        };
        let mut fields = stat.split_whitespace().map(str::parse::<u64>);
        if let (Some(Ok(ran_nanos)), Some(Ok(waited_nanos))) = (fields.next(), fields.next()) {
            threads.push(ThreadSched {
                id,
                ran_nanos,
                waited_nanos,
            });
        }
    }
    Some(threads)
}

/// The process id of the broker JVM whose files lie under `dir` (its command line
/// names them), found among the processes in `/proc`.
///
/// ```no_run
/// let pid = event_bus_tests::proc_stats::broker_pid(std::path::Path::new("/tmp/kafka-1"));
/// ```
pub fn broker_pid(dir: &Path) -> Option<String> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmd| {
                let cmd = String::from_utf8_lossy(&cmd);
                cmd.contains("kafka.Kafka") && cmd.contains(&needle)
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_at_least_this_thread_and_it_ran() {
        let threads = thread_schedstats("self").expect("Linux /proc");
        assert!(!threads.is_empty());
        assert!(threads.iter().any(|t| t.ran_nanos > 0));
        assert_eq!(broker_pid(Path::new("/no/such/kafka/dir")), None);
    }
}
