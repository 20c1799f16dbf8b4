//! `mobike-rs status [--json] [--socket PATH]`: asks the mobike-rs plugin in
//! charon for the MOBIKE state of every IKE_SA and prints it.
//!
//! The plugin renders the answer (text or JSON); this program only connects,
//! sends one request line and copies the answer to stdout. It links nothing
//! of strongSwan, so it runs even when charon is broken.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::Duration;

/// Where the plugin listens unless `status_socket` says otherwise.
const DEFAULT_SOCKET: &str = "/var/run/charon-mobike-rs.sock";
/// An answer larger than this is cut off: the plugin bounds its own output
/// far below it, so more means something else is on the socket.
const MAX_ANSWER: u64 = 64 << 20;

const USAGE: &str = "\
usage: mobike-rs status [--json] [--socket PATH]

Shows, for each IKE_SA in charon, whether MOBIKE was negotiated, the local
and peer address sets, the current path, the NAT state, the last update and
its reason, probes in flight and counters.

  --json         print JSON for scripts instead of text
  --socket PATH  the plugin's socket (default /var/run/charon-mobike-rs.sock,
                 charon.plugins.mobike-rs.status_socket)
  -h, --help     this text
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("mobike-rs: {msg}\n\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(msg)) => {
            eprintln!("mobike-rs: {msg}");
            ExitCode::from(1)
        }
    }
}

enum Failure {
    Usage(String),
    Runtime(String),
}

fn run(args: &[String]) -> Result<(), Failure> {
    let mut json = false;
    let mut socket = DEFAULT_SOCKET.to_string();
    let mut command = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(());
            }
            "--json" => json = true,
            "--socket" => {
                socket = it
                    .next()
                    .ok_or_else(|| Failure::Usage("--socket needs a path".into()))?
                    .clone();
            }
            s if s.starts_with('-') => return Err(Failure::Usage(format!("unknown option {s}"))),
            s if command.is_none() => command = Some(s.to_string()),
            s => return Err(Failure::Usage(format!("unexpected argument {s}"))),
        }
    }
    match command.as_deref() {
        Some("status") => {}
        None => return Err(Failure::Usage("no command given".into())),
        Some(other) => return Err(Failure::Usage(format!("unknown command {other}"))),
    }
    let path = socket.strip_prefix("unix://").unwrap_or(&socket);
    let answer = query(
        path,
        if json {
            "status json\n"
        } else {
            "status text\n"
        },
    )
    .map_err(Failure::Runtime)?;
    std::io::stdout()
        .write_all(&answer)
        .map_err(|e| Failure::Runtime(format!("writing to stdout: {e}")))
}

/// One request, one answer, then the plugin closes the connection.
fn query(path: &str, request: &str) -> Result<Vec<u8>, String> {
    let mut stream = UnixStream::connect(path).map_err(|e| {
        format!(
            "cannot connect to {path}: {e} (is charon running with the mobike-rs plugin \
             loaded, and are you root?)"
        )
    })?;
    let timeout = Some(Duration::from_secs(10));
    stream.set_read_timeout(timeout).ok();
    stream.set_write_timeout(timeout).ok();
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("sending the request to {path}: {e}"))?;
    let mut answer = Vec::new();
    stream
        .take(MAX_ANSWER)
        .read_to_end(&mut answer)
        .map_err(|e| format!("reading the answer from {path}: {e}"))?;
    if answer.is_empty() {
        return Err(format!("{path} closed the connection without an answer"));
    }
    if let Some(err) = answer.strip_prefix(b"error: ") {
        return Err(String::from_utf8_lossy(err).trim_end().to_string());
    }
    Ok(answer)
}
