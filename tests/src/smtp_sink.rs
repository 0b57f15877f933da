//! [`SmtpSink`]: a tiny SMTP server on 127.0.0.1 that records the mail it
//! is given, for tests of code delivery by mail. It can be told to refuse
//! mail with a status of the test's choice, and be taken down (connections
//! refused) and brought back up on the same port.
//!
//! It speaks what an SMTP client such as lettre needs to submit a message
//! — greeting, `EHLO`/`HELO`, `MAIL`, `RCPT`, `DATA` (with dot-unstuffing),
//! `RSET`, `NOOP`, `QUIT` — without TLS or authentication.
//!
//! ```no_run
//! use kv_module_tests::smtp_sink::SmtpSink;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let sink = SmtpSink::start().await;
//! // SMTP_URL = sink.url(): every mail the app sends is in sink.messages().
//! sink.refuse_with(451); // from now on, MAIL FROM gets `451 4.3.0 ...`
//! sink.accept();
//! # }
//! ```

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::process::free_port;

/// One message the sink accepted.
#[derive(Clone, Debug)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM:<...>`).
    pub from: String,
    /// The envelope recipients (`RCPT TO:<...>`).
    pub to: Vec<String>,
    /// The message as sent after `DATA`, dot-unstuffed, lines joined by
    /// `\r\n`, without the final `.`.
    pub data: String,
}

impl ReceivedMail {
    /// The message's body: what follows the first empty line.
    pub fn body(&self) -> &str {
        self.data
            .split_once("\r\n\r\n")
            .map_or("", |(_headers, body)| body)
    }

    /// The runs of ASCII digits in the body at least `min_len` long (a
    /// one-time code is one).
    pub fn digit_runs(&self, min_len: usize) -> Vec<String> {
        self.body()
            .split(|c: char| !c.is_ascii_digit())
            .filter(|run| run.len() >= min_len)
            .map(str::to_owned)
            .collect()
    }
}

#[derive(Default)]
struct Shared {
    mail: Mutex<Vec<ReceivedMail>>,
    /// `Some(status)`: answer `MAIL FROM` with it.
    refusal: Mutex<Option<u16>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running (or [stopped](Self::stop)) SMTP sink; the server stops when
/// it is dropped.
pub struct SmtpSink {
    port: u16,
    shared: Arc<Shared>,
    server: Option<JoinHandle<()>>,
}

impl SmtpSink {
    /// Starts a sink on a free port of 127.0.0.1 (below 32768, outside the
    /// ephemeral range, so that it can be taken again after a
    /// [`stop`](Self::stop)).
    ///
    /// # Panics
    ///
    /// When no port can be bound in a few tries.
    pub async fn start() -> Self {
        for _ in 0..20 {
            let port = free_port();
            if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await {
                let shared = Arc::new(Shared::default());
                let server = Some(tokio::spawn(serve(listener, shared.clone())));
                return Self {
                    port,
                    shared,
                    server,
                };
            }
        }
        panic!("the SMTP sink found no free port");
    }

    /// `smtp://127.0.0.1:<port>`: the app's `SMTP_URL`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every message accepted so far, in order.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        lock(&self.shared.mail).clone()
    }

    /// From now on, answers `MAIL FROM` with `status` (a 4xx or 5xx), so
    /// that no message is accepted.
    ///
    /// # Panics
    ///
    /// When `status` is not a 4xx or 5xx.
    pub fn refuse_with(&self, status: u16) {
        assert!((400..600).contains(&status), "{status} is not a refusal");
        *lock(&self.shared.refusal) = Some(status);
    }

    /// From now on, accepts every message (the default).
    pub fn accept(&self) {
        *lock(&self.shared.refusal) = None;
    }

    /// Takes the sink down: the listener is closed (connections are
    /// refused) and open sessions are cut.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            // Aborted: the listener and the sessions are dropped by now.
            let _ = server.await;
        }
    }

    /// Brings a [stopped](Self::stop) sink back on the same port, keeping
    /// the messages received so far.
    ///
    /// # Panics
    ///
    /// When the port cannot be bound again (another process took it).
    pub async fn restart(&mut self) {
        self.stop().await;
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap_or_else(|e| panic!("the SMTP sink cannot bind port {} again: {e}", self.port));
        self.server = Some(tokio::spawn(serve(listener, self.shared.clone())));
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Accepts connections until aborted; aborting drops the sessions too.
async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    sessions.spawn(session(stream, shared.clone()));
                }
            }
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
}

/// One SMTP session; ends at `QUIT`, EOF or an I/O error.
async fn session(stream: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write
        .write_all(b"220 127.0.0.1 test sink ESMTP\r\n")
        .await?;
    let mut from = None::<String>;
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end_matches(['\r', '\n']);
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: String = match verb.as_str() {
            "EHLO" => "250-127.0.0.1\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n".into(),
            "HELO" | "NOOP" => "250 OK\r\n".into(),
            "RSET" => {
                from = None;
                to.clear();
                "250 OK\r\n".into()
            }
            "MAIL" => match *lock(&shared.refusal) {
                Some(status) => {
                    let class = status / 100;
                    format!("{status} {class}.3.0 refused by the test sink\r\n")
                }
                None => {
                    from = Some(angle_address(command));
                    to.clear();
                    "250 OK\r\n".into()
                }
            },
            "RCPT" if from.is_some() => {
                to.push(angle_address(command));
                "250 OK\r\n".into()
            }
            "DATA" if from.is_some() && !to.is_empty() => {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let data = read_data(&mut lines).await?;
                let mail = ReceivedMail {
                    from: from.take().unwrap_or_default(),
                    to: std::mem::take(&mut to),
                    data,
                };
                lock(&shared.mail).push(mail);
                "250 OK queued\r\n".into()
            }
            "RCPT" | "DATA" => "503 5.5.1 bad sequence of commands\r\n".into(),
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => "502 5.5.2 command not implemented\r\n".into(),
        };
        write.write_all(reply.as_bytes()).await?;
    }
}

/// The `<...>` of `MAIL FROM:<a@b> SIZE=1` or `RCPT TO:<a@b>`.
fn angle_address(command: &str) -> String {
    command
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map_or_else(String::new, |(address, _)| address.to_owned())
}

/// The lines after `DATA` up to the lone `.`, dot-unstuffed.
async fn read_data(
    lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<String> {
    let mut data = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let text = line.trim_end_matches(['\r', '\n']);
        if text == "." {
            return Ok(data.join("\r\n"));
        }
        data.push(text.strip_prefix('.').unwrap_or(text).to_owned());
    }
}
