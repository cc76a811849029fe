//! Reading a passphrase at the terminal without echo, so that Ctrl-C cancels
//! cleanly.
//!
//! A line editor or `console`'s secure read turns echo off and relies on the
//! default SIGINT handling: a Ctrl-C then kills the process with echo still
//! off, and the user's shell stays blind until `stty sane`. Here the terminal
//! is put in non-canonical mode with echo *and* signals off, so Ctrl-C (and
//! Ctrl-D) arrive as bytes and cancel the prompt; the original settings are
//! restored on every path, including a panic (the guard's `Drop`).

use std::io::{self, Read, Write};

use zeroize::Zeroizing;

/// What the user did at the prompt.
pub enum Secret {
    /// Typed a line and pressed Enter (the line, without the newline).
    Line(Zeroizing<String>),
    /// Pressed Ctrl-C or Ctrl-D.
    Cancelled,
}

/// Print `prompt` on standard error and read one line from the terminal on
/// standard input without echoing it.
///
/// # Errors
/// I/O errors, and standard input not being a terminal.
#[cfg(unix)]
pub fn read_secret(prompt: &str) -> io::Result<Secret> {
    let fd = libc::STDIN_FILENO;
    // SAFETY: `termios` is plain data; tcgetattr fills it or fails.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: a valid fd and a valid pointer to a termios.
    if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut raw = saved;
    raw.c_lflag &= !(libc::ECHO | libc::ICANON | libc::ISIG | libc::IEXTEN);
    raw.c_cc[libc::VMIN] = 1;
    raw.c_cc[libc::VTIME] = 0;
    // The terminal is switched before the prompt is shown: TCSAFLUSH drops
    // pending input, so anything typed once the prompt is visible (a quick
    // Ctrl-C, say) must arrive after the switch, never be flushed by it.
    // SAFETY: as above; `raw` is a modified copy of the current settings.
    if unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &raw) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let _restore = Restore { fd, saved };
    let mut err = io::stderr();
    write!(err, "{prompt}")?;
    err.flush()?;
    let mut line = Zeroizing::new(Vec::<u8>::new());
    let mut byte = [0u8; 1];
    let mut stdin = io::stdin().lock();
    let outcome = loop {
        if stdin.read(&mut byte)? == 0 {
            break Secret::Cancelled;
        }
        match byte[0] {
            b'\r' | b'\n' => {
                let text = String::from_utf8(std::mem::take(&mut *line)).map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidData, "the passphrase is not UTF-8")
                })?;
                break Secret::Line(Zeroizing::new(text));
            }
            // Ctrl-C, Ctrl-D.
            0x03 | 0x04 => break Secret::Cancelled,
            // Backspace / Delete.
            0x08 | 0x7f => {
                line.pop();
            }
            b => line.push(b),
        }
    };
    writeln!(err)?;
    Ok(outcome)
}

/// Restores the saved terminal settings when dropped.
#[cfg(unix)]
struct Restore {
    fd: libc::c_int,
    saved: libc::termios,
}

#[cfg(unix)]
impl Drop for Restore {
    fn drop(&mut self) {
        // SAFETY: the fd and settings read by tcgetattr above.
        unsafe {
            libc::tcsetattr(self.fd, libc::TCSAFLUSH, &self.saved);
        }
    }
}

/// Elsewhere: `console`'s secure read (Ctrl-C ends the process there).
///
/// # Errors
/// I/O errors.
#[cfg(not(unix))]
pub fn read_secret(prompt: &str) -> io::Result<Secret> {
    let term = console::Term::stderr();
    write!(&term, "{prompt}")?;
    let line = term.read_secure_line()?;
    Ok(Secret::Line(Zeroizing::new(line)))
}
