//! Issue 11, points 2 and 3: slow clients against the app's connection
//! limits, with raw TCP sockets. A client that sends part of its headers,
//! part of its body or nothing, or idles on a keep-alive connection, is
//! closed by the server within its deadline; the connection cap holds
//! further clients back without losing them; the graceful shutdown
//! finishes within its deadline even while a client holds a partial
//! request. The deadlines are set short through the environment. The
//! connection handling is the same on every store driver, so these run
//! on the memory driver.

use std::time::{Duration, Instant};

use kv_module_tests::test_app::{Driver, TestApp, TestAppConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the scheduler of a loaded 2-core machine may add to a deadline.
const MARGIN: Duration = Duration::from_secs(2);

async fn spawn(settings: &[(&'static str, &str)]) -> TestApp {
    let config = TestAppConfig {
        extra: settings
            .iter()
            .map(|(name, value)| (*name, (*value).to_owned()))
            .collect(),
        ..TestAppConfig::default()
    };
    TestApp::spawn_with(Driver::Memory, config).await
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.addr)
        .await
        .expect("connect to the app")
}

/// Reads until the server closes the connection (end of file or reset)
/// and returns what it sent; `Err` with what was read if it is still open
/// after `within`.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> Result<String, String> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0_u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&received).into_owned();
    match read {
        Ok(()) => Ok(text),
        Err(_) => Err(format!("still open after {within:?}, having sent {text:?}")),
    }
}

/// Reads one whole response (headers and a `Content-Length` body).
async fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0_u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
        let n = tokio::time::timeout(MARGIN, stream.read(&mut buf))
            .await
            .expect("a response in time")
            .expect("a readable socket");
        assert!(n > 0, "closed mid-response: {text:?}");
        received.extend_from_slice(&buf[..n]);
    }
}

const PARTIAL_HEADERS: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: app\r\nX-Slow: ";
const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: app\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_headers_and_silence_are_closed_at_the_header_deadline() {
    let app = spawn(&[("HTTP_HEADER_READ_TIMEOUT", "500ms")]).await;
    let deadline = Duration::from_millis(500);

    let mut silent = connect(&app).await;
    let mut partial = connect(&app).await;
    partial.write_all(PARTIAL_HEADERS).await.unwrap();
    let started = Instant::now();
    closed_by_server(&mut silent, deadline + MARGIN)
        .await
        .expect("a client that sends nothing is closed");
    closed_by_server(&mut partial, deadline + MARGIN)
        .await
        .expect("a client that stops mid-headers is closed");
    assert!(started.elapsed() < deadline + MARGIN);

    // The deadline is for the whole head: trickling a byte at a time does
    // not extend it.
    let mut trickle = connect(&app).await;
    let started = Instant::now();
    let mut closed = false;
    for byte in PARTIAL_HEADERS.iter().cycle().take(200) {
        if trickle.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0_u8; 64];
        // Waiting for the server's close (or 100 ms) paces the trickle.
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(100), trickle.read(&mut buf)).await
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "a trickling client is closed");
    assert!(
        started.elapsed() < deadline + MARGIN,
        "trickling closed after {:?}",
        started.elapsed()
    );

    // A normal client is unaffected.
    let mut normal = connect(&app).await;
    normal.write_all(HEALTHZ).await.unwrap();
    assert!(read_response(&mut normal).await.starts_with("HTTP/1.1 200"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_gets_408_and_is_closed() {
    let app = spawn(&[("HTTP_BODY_READ_TIMEOUT", "500ms")]).await;
    let mut slow = connect(&app).await;
    slow.write_all(
        b"POST /api/users HTTP/1.1\r\nHost: app\r\nContent-Type: application/json\r\n\
          Content-Length: 60\r\n\r\n{\"na",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let sent = closed_by_server(&mut slow, Duration::from_millis(500) + MARGIN)
        .await
        .expect("a client that stops mid-body is closed");
    assert!(sent.starts_with("HTTP/1.1 408"), "{sent:?}");
    assert!(sent.contains("application/problem+json"), "{sent:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "not before the deadline: {:?}",
        started.elapsed()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_declared_body_is_refused_at_once() {
    // Long deadlines: the answer must not wait for them.
    let app = spawn(&[
        ("HTTP_BODY_READ_TIMEOUT", "60s"),
        ("HTTP_HEADER_READ_TIMEOUT", "60s"),
    ])
    .await;
    let mut client = connect(&app).await;
    client
        .write_all(
            b"POST /api/users HTTP/1.1\r\nHost: app\r\nContent-Type: application/json\r\n\
              Content-Length: 100000000\r\n\r\n{}",
        )
        .await
        .unwrap();
    let sent = closed_by_server(&mut client, MARGIN)
        .await
        .expect("answered and closed without waiting for 100 MB");
    assert!(sent.starts_with("HTTP/1.1 413"), "{sent:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_has_its_own_timeout() {
    // A header deadline shorter than the idle timeout: an idle connection
    // lives by the idle timeout, not the header deadline.
    let app = spawn(&[
        ("HTTP_HEADER_READ_TIMEOUT", "300ms"),
        ("HTTP_KEEP_ALIVE_TIMEOUT", "1500ms"),
    ])
    .await;
    let mut client = connect(&app).await;
    client.write_all(HEALTHZ).await.unwrap();
    assert!(read_response(&mut client).await.starts_with("HTTP/1.1 200"));
    // Idle past the header deadline (a bounded wait for a close that must
    // not come), then a second request on the same connection.
    let early = closed_by_server(&mut client, Duration::from_millis(800)).await;
    assert!(
        early.is_err(),
        "closed while idle before the keep-alive timeout: {early:?}"
    );
    client.write_all(HEALTHZ).await.unwrap();
    assert!(read_response(&mut client).await.starts_with("HTTP/1.1 200"));
    let idle_since = Instant::now();
    closed_by_server(&mut client, Duration::from_millis(1500) + MARGIN)
        .await
        .expect("an idle keep-alive connection is closed");
    let idle = idle_since.elapsed();
    assert!(
        idle >= Duration::from_millis(900),
        "closed after {idle:?} idle: the 300 ms header deadline, not the 1.5 s keep-alive timeout?"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_holds_clients_back_until_a_slot_frees() {
    let app = spawn(&[
        ("HTTP_MAX_CONNECTIONS", "4"),
        ("HTTP_HEADER_READ_TIMEOUT", "1500ms"),
    ])
    .await;
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut stream = connect(&app).await;
        stream.write_all(PARTIAL_HEADERS).await.unwrap();
        slow.push(stream);
    }
    // The fifth client connects (the kernel's backlog takes it) but is not
    // served while the four hold every slot.
    let mut fifth = connect(&app).await;
    fifth.write_all(HEALTHZ).await.unwrap();
    let started = Instant::now();
    let mut buf = [0_u8; 16];
    let early = tokio::time::timeout(Duration::from_millis(700), fifth.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "the fifth client was served above the cap: {early:?}"
    );
    // The header deadline frees the slots; then it is served.
    let response = read_response(&mut fifth).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
    assert!(started.elapsed() < Duration::from_millis(1500) + MARGIN);
    for mut stream in slow {
        closed_by_server(&mut stream, MARGIN)
            .await
            .expect("the slow clients were closed");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_slow_clients_neither_block_healthz_nor_stay() {
    let app = spawn(&[("HTTP_HEADER_READ_TIMEOUT", "2s")]).await;
    let mut slow = Vec::new();
    for n in 0..300 {
        let mut stream = connect(&app).await;
        if n % 2 == 0 {
            stream.write_all(PARTIAL_HEADERS).await.unwrap();
        }
        slow.push(stream);
    }
    let started = Instant::now();
    let r = tokio::time::timeout(MARGIN, app.client.get(app.url("/healthz")).send())
        .await
        .expect("/healthz answers while 300 slow clients are connected")
        .unwrap();
    assert_eq!(r.status(), 200);
    let closes = slow.into_iter().map(|mut stream| {
        tokio::spawn(async move {
            closed_by_server(&mut stream, Duration::from_secs(2) + MARGIN * 2).await
        })
    });
    for (n, close) in closes.enumerate() {
        close
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("slow client {n}: {e}"));
    }
    assert!(started.elapsed() < Duration::from_secs(2) + MARGIN * 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_within_its_deadline_despite_a_partial_request() {
    // The header deadline is far away: only the shutdown deadline can end
    // the partial request.
    let app = spawn(&[
        ("SHUTDOWN_TIMEOUT", "1s"),
        ("HTTP_HEADER_READ_TIMEOUT", "60s"),
    ])
    .await;
    let addr = app.addr;
    let mut partial = connect(&app).await;
    partial.write_all(PARTIAL_HEADERS).await.unwrap();
    // An idle keep-alive connection too: closed as the drain starts.
    let mut idle = connect(&app).await;
    idle.write_all(HEALTHZ).await.unwrap();
    assert!(read_response(&mut idle).await.starts_with("HTTP/1.1 200"));

    let started = Instant::now();
    assert!(
        app.stop_within(Duration::from_secs(1) + MARGIN).await,
        "the app did not stop within its 1 s shutdown deadline + margin"
    );
    let stopped_after = started.elapsed();
    closed_by_server(&mut idle, MARGIN)
        .await
        .expect("the idle connection was closed");
    closed_by_server(&mut partial, MARGIN)
        .await
        .expect("the partial request's connection was closed");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting after the shutdown"
    );
    assert!(
        stopped_after >= Duration::from_millis(900),
        "the partial request was given the drain deadline: {stopped_after:?}"
    );
}
