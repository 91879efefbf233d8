//! Child processes owned by a lab: placed (namespace, cgroup, CPU) before they exec and killed
//! by PID on drop; and timed one-shot commands that report their peak memory.

use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::describe;

/// A child process killed (SIGKILL, by its PID) and reaped on drop.
#[derive(Debug)]
pub struct Guarded {
    child: Child,
}

impl Guarded {
    /// Spawns `command` with piped stdin and stdout (stderr inherited).
    pub fn spawn(command: &mut Command) -> io::Result<Guarded> {
        let child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|err| io::Error::new(err.kind(), format!("{}: {err}", describe(command))))?;
        Ok(Guarded { child })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child's stdin and stdout, for a line protocol.
    pub fn pipes(&mut self) -> (&mut ChildStdin, &mut ChildStdout) {
        (
            self.child.stdin.as_mut().expect("piped"),
            self.child.stdout.as_mut().expect("piped"),
        )
    }

    /// Waits up to `timeout` for the child to exit by itself, then kills it.
    pub fn finish(mut self, timeout: Duration) -> io::Result<()> {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Makes `command`'s child run on `cpu` only.
pub fn pin_in(command: &mut Command, cpu: usize) {
    let cpu = cpu % crate::cpu_count();
    // SAFETY: sched_setaffinity(2) on a stack cpu_set_t; no allocation in the child.
    unsafe {
        command.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// What a [`timed`] command did.
#[derive(Clone, Debug)]
pub struct Timed {
    /// From spawn to exit.
    pub elapsed: Duration,
    /// The child's peak resident memory (`ru_maxrss`), KiB.
    pub max_rss_kib: u64,
}

/// Runs `command` with `input` on its stdin to completion; fails with its stderr if it exits
/// unsuccessfully. The time covers the whole run, including reading the input.
pub fn timed(command: &mut Command, input: &[u8]) -> io::Result<Timed> {
    let what = describe(command);
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| io::Error::new(err.kind(), format!("{what}: {err}")))?;
    let mut stdin = child.stdin.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let (errors, wrote) = std::thread::scope(|s| {
        let reader = s.spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let wrote = stdin.write_all(input);
        drop(stdin);
        (reader.join().unwrap_or_default(), wrote)
    });
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage to fill; the pid is our unreaped child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; std's Child is not waited on afterwards (reaping it twice is harmless:
    // std only reports ECHILD, and the handle is dropped without waiting).
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = started.elapsed();
    if rc != pid {
        return Err(io::Error::last_os_error());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(io::Error::other(format!(
            "{what} failed (status {status}): {}",
            errors.trim()
        )));
    }
    wrote.map_err(|err| io::Error::new(err.kind(), format!("{what}: writing input: {err}")))?;
    Ok(Timed {
        elapsed,
        max_rss_kib: usage.ru_maxrss as u64,
    })
}
