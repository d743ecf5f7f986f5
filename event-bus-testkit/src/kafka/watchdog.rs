//! Child processes that die with the test process, however it ends.
//!
//! A `sh` process blocks reading a pipe whose only writer is this process. When this
//! process exits (normally, by panic, or by SIGKILL) the kernel closes the pipe, the
//! read returns, and the script kills the watched process and removes its folder.

use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

/// Kills one process (and removes one folder) when the test process dies; disarmed
/// when the process is stopped on purpose.
pub(crate) struct Watchdog {
    child: Child,
    // Held open and never written until disarmed; its closing wakes the script.
    _stdin: Option<ChildStdin>,
}

impl Watchdog {
    /// Watches `pid`; also removes `remove_dir` after killing it, when given.
    /// `None` (with a warning) when `sh` cannot be started.
    pub(crate) fn spawn(pid: u32, remove_dir: Option<&Path>) -> Option<Watchdog> {
        const SCRIPT: &str = r#"read -r _ignored; kill -KILL "$1" 2>/dev/null; if [ -n "$2" ]; then sleep 1; rm -rf "$2"; fi"#;
        let mut command = Command::new("sh");
        command
            .args(["-c", SCRIPT, "kafka-node-watchdog", &pid.to_string()])
            .arg(remove_dir.map(Path::as_os_str).unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match command.spawn() {
            Ok(mut child) => {
                let stdin = child.stdin.take();
                Some(Watchdog {
                    child,
                    _stdin: stdin,
                })
            }
            Err(error) => {
                tracing::warn!(
                    %error,
                    pid,
                    "cannot start a watchdog; this Kafka node outlives a crashed test process"
                );
                None
            }
        }
    }

    /// Stops watching: the watched process is being stopped on purpose.
    pub(crate) fn disarm(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.disarm();
    }
}
