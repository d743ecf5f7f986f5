//! One KRaft node (broker and controller in one JVM): its configuration, its log
//! directory, and its process.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::error::ClusterError;
use super::install::{class_path, java};
use super::watchdog::Watchdog;

/// The Log4j 2 configuration every node gets.
const LOG4J2_PROPERTIES: &str = include_str!("../../kafka/log4j2.properties");

/// Where a node listens and keeps its files.
#[derive(Debug, Clone)]
pub(crate) struct NodeAddress {
    /// Index in the cluster, and Kafka's `node.id`.
    pub(crate) index: usize,
    /// Client listener on 127.0.0.1.
    pub(crate) broker_port: u16,
    /// Controller (KRaft quorum) listener on 127.0.0.1.
    pub(crate) controller_port: u16,
    /// The node's folder: `server.properties`, `log4j2.properties`, `server.log`, `data/`.
    pub(crate) dir: PathBuf,
}

impl NodeAddress {
    pub(crate) fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("server.properties")
    }

    fn log4j_path(&self) -> PathBuf {
        self.dir.join("log4j2.properties")
    }
}

/// What a node is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeState {
    Running,
    Paused,
    Stopped,
}

impl NodeState {
    pub(crate) fn name(self) -> &'static str {
        match self {
            NodeState::Running => "running",
            NodeState::Paused => "paused",
            NodeState::Stopped => "stopped",
        }
    }
}

/// A node and, while it runs, its JVM.
pub(crate) struct Node {
    pub(crate) address: NodeAddress,
    process: Option<Child>,
    watchdog: Option<Watchdog>,
    paused: bool,
}

impl Node {
    pub(crate) fn new(address: NodeAddress) -> Self {
        Self {
            address,
            process: None,
            watchdog: None,
            paused: false,
        }
    }

    /// Writes `server.properties` (the cluster's `settings` plus this node's own) and
    /// the Log4j configuration.
    pub(crate) fn write_config(
        &self,
        voters: &str,
        settings: &[(String, String)],
    ) -> Result<(), ClusterError> {
        let a = &self.address;
        let data = a.dir.join("data");
        let mut lines = vec![
            "# Written by event-bus-testkit for one KRaft node of a test cluster.".to_owned(),
            "process.roles=broker,controller".to_owned(),
            format!("node.id={}", a.index),
            format!("controller.quorum.voters={voters}"),
            format!(
                "listeners=PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
                a.broker_port, a.controller_port
            ),
            format!(
                "advertised.listeners=PLAINTEXT://127.0.0.1:{}",
                a.broker_port
            ),
            "controller.listener.names=CONTROLLER".to_owned(),
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".to_owned(),
            "inter.broker.listener.name=PLAINTEXT".to_owned(),
            format!("log.dirs={}", data.display()),
        ];
        lines.extend(settings.iter().map(|(key, value)| format!("{key}={value}")));
        lines.push(String::new());
        write(&a.config_path(), &lines.join("\n"))?;
        write(&a.log4j_path(), LOG4J2_PROPERTIES)
    }

    /// Runs Kafka's storage formatter on the node's log dir (blocks until it ends).
    pub(crate) fn spawn_format(
        &self,
        libs: &Path,
        cluster_id: &str,
    ) -> Result<Child, ClusterError> {
        let java = java();
        Command::new(&java)
            .args(["-Xmx256m", "-cp"])
            .arg(class_path(libs))
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                self.address.log4j_path().display()
            ))
            .args(["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c"])
            .arg(self.address.config_path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| ClusterError::Spawn { java, source })
    }

    /// Starts the node's JVM, its output appended to `server.log`.
    pub(crate) fn start(
        &mut self,
        libs: &Path,
        heap_mb: u32,
        remove_on_death: bool,
    ) -> Result<(), ClusterError> {
        if self.state() != NodeState::Stopped {
            return Err(self.state_error("start"));
        }
        let log_path = self.address.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|source| ClusterError::Prepare {
                path: log_path.clone(),
                source,
            })?;
        let log_err = log.try_clone().map_err(|source| ClusterError::Prepare {
            path: log_path,
            source,
        })?;
        let java = java();
        let child = Command::new(&java)
            .arg(format!("-Xms{}m", heap_mb.min(256)))
            .arg(format!("-Xmx{heap_mb}m"))
            .args([
                "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20",
                "-XX:+ExitOnOutOfMemoryError",
                "-Djava.awt.headless=true",
            ])
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                self.address.log4j_path().display()
            ))
            .arg("-cp")
            .arg(class_path(libs))
            .arg("kafka.Kafka")
            .arg(self.address.config_path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .map_err(|source| ClusterError::Spawn { java, source })?;
        let watched_dir = remove_on_death.then_some(self.address.dir.as_path());
        self.watchdog = Watchdog::spawn(child.id(), watched_dir);
        self.process = Some(child);
        self.paused = false;
        Ok(())
    }

    /// SIGKILL, then waits for the process to end.
    pub(crate) fn kill(&mut self) -> Result<(), ClusterError> {
        if let Some(mut watchdog) = self.watchdog.take() {
            watchdog.disarm();
        }
        match self.process.take() {
            Some(mut child) => {
                let _ = child.kill();
                let _ = child.wait();
                self.paused = false;
                Ok(())
            }
            None => Err(self.state_error("kill")),
        }
    }

    /// SIGSTOP: the node stops answering but keeps its connections (a hung broker).
    pub(crate) fn pause(&mut self) -> Result<(), ClusterError> {
        if self.state() != NodeState::Running {
            return Err(self.state_error("pause"));
        }
        self.signal(libc::SIGSTOP, "SIGSTOP")?;
        self.paused = true;
        Ok(())
    }

    /// SIGCONT after [`pause`](Self::pause).
    pub(crate) fn resume(&mut self) -> Result<(), ClusterError> {
        if self.state() != NodeState::Paused {
            return Err(self.state_error("resume"));
        }
        self.signal(libc::SIGCONT, "SIGCONT")?;
        self.paused = false;
        Ok(())
    }

    pub(crate) fn state(&mut self) -> NodeState {
        match self.process.as_mut().map(Child::try_wait) {
            Some(Ok(None)) if self.paused => NodeState::Paused,
            Some(Ok(None)) => NodeState::Running,
            _ => NodeState::Stopped,
        }
    }

    /// The exit status when the JVM has ended on its own.
    pub(crate) fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.process
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    pub(crate) fn log_tail(&self) -> String {
        log_tail(&self.address.log_path())
    }

    fn signal(&mut self, signal: libc::c_int, name: &'static str) -> Result<(), ClusterError> {
        let pid = self
            .process
            .as_ref()
            .and_then(|c| libc::pid_t::try_from(c.id()).ok())
            .ok_or_else(|| self.state_error(name))?;
        // SAFETY: kill(2) with a pid of our own child process (not yet reaped, so the
        // pid cannot have been reused) and a valid signal number.
        let result = unsafe { libc::kill(pid, signal) };
        if result == 0 {
            Ok(())
        } else {
            Err(ClusterError::Signal {
                node: self.address.index,
                signal: name,
                source: io::Error::last_os_error(),
            })
        }
    }

    fn state_error(&mut self, operation: &'static str) -> ClusterError {
        ClusterError::NodeState {
            node: self.address.index,
            state: self.state().name(),
            operation,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

fn write(path: &Path, text: &str) -> Result<(), ClusterError> {
    std::fs::write(path, text).map_err(|source| ClusterError::Prepare {
        path: path.to_owned(),
        source,
    })
}

/// The last 4 KiB of a log file (or a note that it cannot be read).
pub(crate) fn log_tail(path: &Path) -> String {
    const TAIL: u64 = 4096;
    let read = || -> io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(TAIL)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    read().unwrap_or_else(|error| format!("(cannot read {}: {error})", path.display()))
}
