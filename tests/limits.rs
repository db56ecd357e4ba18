//! Connection limits: idle connections and stalled bodies are cut off.

mod common;

use std::time::Duration;

use common::{TestDir, TestServer};
use mind_lite::Settings;
use tokio::{io::AsyncReadExt, net::TcpStream};

#[tokio::test]
async fn idle_connection_is_closed() {
    let dir = TestDir::new();
    let mut settings = Settings::for_database(dir.database_url());
    settings.idle_timeout_secs = 1;
    let server = TestServer::start_with(settings).await;
    let address = server.base_url.trim_start_matches("http://").to_owned();

    let mut stream = TcpStream::connect(&address).await.expect("connect");
    let mut buffer = [0u8; 64];
    // The daemon closes the silent connection after about one second; the
    // bound only keeps a broken daemon from hanging the test.
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buffer)).await;

    let bytes_read = read.expect("idle connection still open after 20 s");
    assert!(
        matches!(bytes_read, Ok(0) | Err(_)),
        "expected the daemon to close the connection, read {bytes_read:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn stalled_body_is_cut_off() {
    let dir = TestDir::new();
    let mut settings = Settings::for_database(dir.database_url());
    settings.body_timeout_secs = 1;
    let server = TestServer::start_with(settings).await;
    let address = server.base_url.trim_start_matches("http://").to_owned();

    let mut stream = TcpStream::connect(&address).await.expect("connect");
    let head = "POST /publish/prepare HTTP/1.1\r\nHost: localhost\r\n\
                Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"draft_id\"";
    tokio::io::AsyncWriteExt::write_all(&mut stream, head.as_bytes())
        .await
        .expect("write partial request");
    let mut received = [0u8; 512];
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut received)).await;

    let bytes_read = read
        .expect("no response to a stalled body after 20 s")
        .expect("read response");
    let response = String::from_utf8_lossy(&received[..bytes_read]);
    assert!(
        response.starts_with("HTTP/1.1 408"),
        "expected a 408 response, got {response:?}"
    );
    server.stop().await;
}
