//! The client against a scripted server over an in-memory pipe: each test
//! plays the server's side frame by frame and checks what the client
//! sends and what its calls return.

mod server;

use std::collections::HashMap;

use bytes::Bytes;
use cairn_wire::etcdpb::{self as pb, path};
use cairn_wire::hpack;

use super::frame::{self, Reason};
use crate::etcd::grpc::UnaryConn;
use crate::limits::{CONNECTION_WINDOW_BYTES, STREAM_WINDOW_BYTES};
use crate::target::OpError;
use server::{framed, indexed, inserting, ok_headers, put_block, start, trailers, AUTHORITY};

fn put_request(value_bytes: usize) -> pb::PutRequest {
    pb::PutRequest {
        key: Bytes::from_static(b"key"),
        value: Bytes::from(vec![b'v'; value_bytes]),
        ..Default::default()
    }
}

fn put_response(revision: i64) -> pb::PutResponse {
    pb::PutResponse {
        header: Some(pb::ResponseHeader {
            revision,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A put on its own task.
fn spawn_put(
    conn: &UnaryConn,
    value_bytes: usize,
) -> tokio::task::JoinHandle<Result<pb::PutResponse, OpError>> {
    let conn = conn.clone();
    tokio::spawn(async move { conn.call(path::KV_PUT, &put_request(value_bytes)).await })
}

fn revision(answer: Result<pb::PutResponse, OpError>) -> i64 {
    answer.expect("a put").header.unwrap().revision
}

#[tokio::test]
async fn a_call_sends_a_grpc_request_and_decodes_its_answer() {
    let (conn, mut server) = start(&[]).await;
    let put = spawn_put(&conn, 100);
    let request = server.request().await;
    assert_eq!(request.stream, 1);
    let fields: Vec<(&str, &str)> = request
        .fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", AUTHORITY),
            (":path", path::KV_PUT),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
    );
    assert_eq!(request.body, framed(&put_request(100)));

    // The answer in two DATA frames, the first padded, and the trailers
    // continued in a CONTINUATION frame.
    let message = framed(&put_response(42));
    let (first, rest) = message.split_at(3);
    let mut out = Vec::new();
    put_block(&mut out, 1, frame::END_HEADERS, &ok_headers());
    let mut padded = vec![4];
    padded.extend_from_slice(first);
    padded.extend_from_slice(&[0; 4]);
    frame::put_frame(&mut out, frame::DATA, frame::PADDED, 1, &padded);
    frame::put_frame(&mut out, frame::DATA, 0, 1, rest);
    let block = trailers("0", None);
    let (start, end) = block.split_at(2);
    put_block(&mut out, 1, frame::END_STREAM, start);
    frame::put_frame(&mut out, frame::CONTINUATION, frame::END_HEADERS, 1, end);
    server.send(&out).await;
    assert_eq!(revision(put.await.unwrap()), 42);

    // Stream ids go up by two; the header block is sent again in full
    // (the client never indexes).
    let put = spawn_put(&conn, 1);
    let request = server.request().await;
    assert_eq!(request.stream, 3);
    assert_eq!(request.fields.len(), 6);
    server.answer(3, &put_response(43)).await;
    assert_eq!(revision(put.await.unwrap()), 43);
}

#[tokio::test]
async fn pings_and_settings_are_acknowledged() {
    let (_conn, mut server) = start(&[]).await;
    let mut out = Vec::new();
    frame::put_frame(&mut out, frame::PING, 0, 0, &[1, 2, 3, 4, 5, 6, 7, 8]);
    frame::put_settings(&mut out, &[(frame::SETTINGS_MAX_FRAME_SIZE, 20_000)]);
    server.send(&out).await;
    let ping = server.frame().await;
    assert_eq!((ping.head.kind, ping.head.flags), (frame::PING, frame::ACK));
    assert_eq!(ping.payload, [1, 2, 3, 4, 5, 6, 7, 8]);
    let ack = server.frame().await;
    assert_eq!(
        (ack.head.kind, ack.head.flags, ack.head.len),
        (frame::SETTINGS, frame::ACK, 0)
    );
}

#[tokio::test]
async fn a_request_larger_than_the_stream_window_waits_for_window_updates() {
    let (conn, mut server) = start(&[(frame::SETTINGS_INITIAL_WINDOW_SIZE, 100)]).await;
    let put = spawn_put(&conn, 1_000);
    let expected = framed(&put_request(1_000));
    let request = server.headers().await;
    let mut body = Vec::new();
    let first = server.data().await;
    assert_eq!(
        (first.head.len, first.head.has(frame::END_STREAM)),
        (100, false)
    );
    body.extend_from_slice(&first.payload);
    server.expect_quiet().await;

    server.window_update(request.stream, 300).await;
    while body.len() < 400 {
        let data = server.data().await;
        assert!(!data.head.has(frame::END_STREAM));
        body.extend_from_slice(&data.payload);
    }
    server.expect_quiet().await;

    // A larger initial window applies to the open stream too.
    server
        .send_settings(&[(frame::SETTINGS_INITIAL_WINDOW_SIZE, 65_535)])
        .await;
    let ack = server.frame().await;
    assert_eq!(
        (ack.head.kind, ack.head.flags),
        (frame::SETTINGS, frame::ACK)
    );
    loop {
        let data = server.data().await;
        body.extend_from_slice(&data.payload);
        if data.head.has(frame::END_STREAM) {
            break;
        }
    }
    assert_eq!(body, expected);
    server.answer(request.stream, &put_response(7)).await;
    assert_eq!(revision(put.await.unwrap()), 7);
}

#[tokio::test]
async fn requests_share_the_connection_window_in_order_and_in_frames_the_server_accepts() {
    let (conn, mut server) = start(&[]).await;
    let value_bytes = 40_000;
    let expected = framed(&put_request(value_bytes));
    let first = spawn_put(&conn, value_bytes);
    let second = spawn_put(&conn, value_bytes);
    // 65,535 bytes of connection window: all of the first request (in
    // frames of at most 16 KiB) and the start of the second.
    let a = server.request().await;
    assert_eq!(a.body, expected);
    let b = server.headers().await;
    let mut bodies: HashMap<u32, Vec<u8>> = HashMap::new();
    while a.body.len() + bodies.values().map(Vec::len).sum::<usize>() < 65_535 {
        let data = server.data().await;
        assert_eq!(data.head.stream, b.stream);
        bodies
            .entry(data.head.stream)
            .or_default()
            .extend_from_slice(&data.payload);
    }
    assert_eq!(bodies[&b.stream].len(), 65_535 - expected.len());
    server.expect_quiet().await;

    // The second stream's own window has room: the connection's held it.
    server.window_update(0, 20_000).await;
    loop {
        let data = server.data().await;
        assert_eq!(data.head.stream, b.stream);
        bodies
            .entry(b.stream)
            .or_default()
            .extend_from_slice(&data.payload);
        if data.head.has(frame::END_STREAM) {
            break;
        }
    }
    assert_eq!(bodies[&b.stream], expected);
    server.answer(a.stream, &put_response(1)).await;
    server.answer(b.stream, &put_response(2)).await;
    assert_eq!(revision(first.await.unwrap()), 1);
    assert_eq!(revision(second.await.unwrap()), 2);
}

#[tokio::test]
async fn the_concurrent_stream_limit_holds_calls_back() {
    let (conn, mut server) = start(&[(frame::SETTINGS_MAX_CONCURRENT_STREAMS, 1)]).await;
    let first = spawn_put(&conn, 1);
    let a = server.request().await;
    let second = spawn_put(&conn, 1);
    server.expect_quiet().await;
    server.answer(a.stream, &put_response(1)).await;
    let b = server.request().await;
    assert_eq!(b.stream, 3);
    server.answer(b.stream, &put_response(2)).await;
    assert_eq!(revision(first.await.unwrap()), 1);
    assert_eq!(revision(second.await.unwrap()), 2);
}

#[tokio::test]
async fn failures_are_counted_by_grpc_message_code_or_http_status() {
    let (conn, mut server) = start(&[]).await;
    let cases: [(Vec<u8>, &str); 4] = [
        // Trailers-only, with the message percent-encoded.
        (
            {
                let mut block = Vec::new();
                hpack::encode_status(200, &mut block);
                block.extend_from_slice(&trailers(
                    "14",
                    Some("etcdserver: too many requests %E2%9C%93"),
                ));
                block
            },
            "etcdserver: too many requests \u{2713}",
        ),
        (
            {
                let mut block = Vec::new();
                hpack::encode_status(200, &mut block);
                block.extend_from_slice(&trailers("9", None));
                block
            },
            "grpc: FailedPrecondition",
        ),
        (
            {
                let mut block = Vec::new();
                hpack::encode_status(200, &mut block);
                block.extend_from_slice(&trailers("0", None));
                block
            },
            "grpc: missing response message",
        ),
        (
            {
                let mut block = Vec::new();
                hpack::encode_status(503, &mut block);
                block
            },
            "grpc: HTTP status 503",
        ),
    ];
    for (block, kind) in cases {
        let put = spawn_put(&conn, 1);
        let request = server.request().await;
        let mut out = Vec::new();
        put_block(
            &mut out,
            request.stream,
            frame::END_HEADERS | frame::END_STREAM,
            &block,
        );
        server.send(&out).await;
        assert_eq!(put.await.unwrap().unwrap_err(), OpError::new(kind));
    }

    // An answer that ends without trailers.
    let put = spawn_put(&conn, 1);
    let request = server.request().await;
    let mut out = Vec::new();
    put_block(&mut out, request.stream, frame::END_HEADERS, &ok_headers());
    frame::put_frame(
        &mut out,
        frame::DATA,
        frame::END_STREAM,
        request.stream,
        &framed(&put_response(1)),
    );
    server.send(&out).await;
    assert_eq!(
        put.await.unwrap().unwrap_err(),
        OpError::new("grpc: missing grpc-status")
    );
    // Every stream ended on both sides: nothing to reset.
    server.expect_quiet().await;
}

#[tokio::test]
async fn a_call_decided_before_its_stream_ends_resets_the_stream() {
    let (conn, mut server) = start(&[]).await;
    let put = spawn_put(&conn, 1);
    let request = server.request().await;
    let mut block = Vec::new();
    hpack::encode_status(500, &mut block);
    let mut out = Vec::new();
    put_block(&mut out, request.stream, frame::END_HEADERS, &block);
    server.send(&out).await;
    assert_eq!(
        put.await.unwrap().unwrap_err(),
        OpError::new("grpc: HTTP status 500")
    );
    let reset = server.frame().await;
    assert_eq!(
        (reset.head.kind, reset.head.stream),
        (frame::RST_STREAM, request.stream)
    );
    assert_eq!(reset.payload, Reason::CANCEL.0.to_be_bytes());
}

#[tokio::test]
async fn a_dropped_call_resets_its_stream() {
    let (conn, mut server) = start(&[]).await;
    let put = spawn_put(&conn, 1);
    let request = server.request().await;
    put.abort();
    assert!(put.await.unwrap_err().is_cancelled());
    let reset = server.frame().await;
    assert_eq!(
        (reset.head.kind, reset.head.stream),
        (frame::RST_STREAM, request.stream)
    );
    assert_eq!(reset.payload, Reason::CANCEL.0.to_be_bytes());
    // The answer to a forgotten stream is read and dropped.
    server.answer(request.stream, &put_response(1)).await;
    let put = spawn_put(&conn, 1);
    let request = server.request().await;
    server.answer(request.stream, &put_response(2)).await;
    assert_eq!(revision(put.await.unwrap()), 2);
}

#[tokio::test]
async fn a_reset_fails_only_its_call() {
    let (conn, mut server) = start(&[]).await;
    let first = spawn_put(&conn, 1);
    let a = server.request().await;
    let second = spawn_put(&conn, 1);
    let b = server.request().await;
    let mut out = Vec::new();
    frame::put_rst_stream(&mut out, a.stream, Reason(0x7));
    server.send(&out).await;
    server.answer(b.stream, &put_response(2)).await;
    assert_eq!(
        first.await.unwrap().unwrap_err(),
        OpError::new("transport: stream reset: REFUSED_STREAM")
    );
    assert_eq!(revision(second.await.unwrap()), 2);
}

#[tokio::test]
async fn goaway_fails_the_calls_the_server_did_not_take_and_refuses_new_ones() {
    let (conn, mut server) = start(&[]).await;
    let mut puts = Vec::new();
    let mut streams = Vec::new();
    for _ in 0..3 {
        puts.push(spawn_put(&conn, 1));
        streams.push(server.request().await.stream);
    }
    assert_eq!(streams, [1, 3, 5]);
    let mut out = Vec::new();
    frame::put_goaway(&mut out, 3, Reason::NO_ERROR, b"");
    server.send(&out).await;
    let going_away = OpError::new("transport: the server is going away (NO_ERROR)");
    let refused = puts.pop().unwrap();
    assert_eq!(refused.await.unwrap().unwrap_err(), going_away);
    assert_eq!(spawn_put(&conn, 1).await.unwrap().unwrap_err(), going_away);
    // The streams it took are still answered.
    server.answer(3, &put_response(3)).await;
    server.answer(1, &put_response(1)).await;
    let revisions: Vec<i64> = revisions_of(puts).await;
    assert_eq!(revisions, [1, 3]);
}

async fn revisions_of(
    puts: Vec<tokio::task::JoinHandle<Result<pb::PutResponse, OpError>>>,
) -> Vec<i64> {
    let mut revisions = Vec::new();
    for put in puts {
        revisions.push(revision(put.await.unwrap()));
    }
    revisions
}

#[tokio::test]
async fn the_end_of_the_connection_fails_every_call_in_flight_and_after() {
    let (conn, mut server) = start(&[]).await;
    let put = spawn_put(&conn, 1);
    server.request().await;
    drop(server);
    let closed = OpError::new("transport: the server closed the connection");
    assert_eq!(put.await.unwrap().unwrap_err(), closed);
    assert_eq!(spawn_put(&conn, 1).await.unwrap().unwrap_err(), closed);
}

#[tokio::test]
async fn a_protocol_breach_fails_the_connection() {
    let (conn, mut server) = start(&[]).await;
    let put = spawn_put(&conn, 1);
    server.request().await;
    // DATA on stream 0.
    let mut out = Vec::new();
    frame::put_frame(&mut out, frame::DATA, 0, 0, b"x");
    server.send(&out).await;
    assert_eq!(
        put.await.unwrap().unwrap_err(),
        OpError::new("transport: PROTOCOL_ERROR: DATA on stream 0")
    );
}

#[tokio::test]
async fn a_large_answer_gives_the_receive_windows_back_as_it_arrives() {
    let (conn, mut server) = start(&[]).await;
    let value = Bytes::from(vec![b'x'; 3 * 1024 * 1024]);
    let range = {
        let conn = conn.clone();
        tokio::spawn(async move {
            conn.call::<_, pb::RangeResponse>(path::KV_RANGE, &pb::RangeRequest::default())
                .await
        })
    };
    let request = server.request().await;
    let answer = pb::RangeResponse {
        kvs: vec![pb::KeyValue {
            key: Bytes::from_static(b"k"),
            value: value.clone(),
            ..Default::default()
        }],
        count: 1,
        ..Default::default()
    };
    let message = framed(&answer);
    // The server sends within the windows the client offered: 2 MiB per
    // stream, 5 MiB for the connection; so the rest of the answer needs
    // the stream's window given back.
    let mut stream_window = i64::from(STREAM_WINDOW_BYTES);
    let mut conn_window = i64::from(CONNECTION_WINDOW_BYTES);
    let mut out = Vec::new();
    put_block(&mut out, request.stream, frame::END_HEADERS, &ok_headers());
    server.send(&out).await;
    let mut updates = HashMap::new();
    for chunk in message.chunks(frame::DEFAULT_MAX_FRAME) {
        while stream_window < chunk.len() as i64 || conn_window < chunk.len() as i64 {
            let update = server.frame().await;
            assert_eq!(update.head.kind, frame::WINDOW_UPDATE, "{:?}", update.head);
            let increment = i64::from(u32::from_be_bytes(update.payload[..].try_into().unwrap()));
            *updates.entry(update.head.stream).or_insert(0) += increment;
            match update.head.stream {
                0 => conn_window += increment,
                _ => stream_window += increment,
            }
        }
        stream_window -= chunk.len() as i64;
        conn_window -= chunk.len() as i64;
        let mut out = Vec::new();
        frame::put_frame(&mut out, frame::DATA, 0, request.stream, chunk);
        server.send(&out).await;
    }
    let mut out = Vec::new();
    put_block(
        &mut out,
        request.stream,
        frame::END_HEADERS | frame::END_STREAM,
        &trailers("0", None),
    );
    server.send(&out).await;
    let got = range.await.unwrap().expect("the range");
    assert_eq!(got.kvs[0].value, value);
    // The stream's window came back in steps of half of it.
    assert!(updates[&request.stream] >= i64::from(STREAM_WINDOW_BYTES / 2));
}

/// A server that indexes its fields, as etcd's does: the same bytes
/// mean other fields once the table has changed, and the client follows.
#[tokio::test]
async fn answers_are_read_through_the_servers_dynamic_table() {
    let (conn, mut server) = start(&[]).await;
    let status_200 = indexed(8);
    /// Response headers, trailers, and the revision or failure read.
    type Answer = (Vec<u8>, Vec<u8>, Result<i64, &'static str>);
    let answers: [Answer; 4] = [
        // content-type inserted (62), then grpc-status 0 (62, content-type
        // 63).
        (
            [vec![status_200], inserting(31, b"", b"application/grpc")].concat(),
            inserting(0, b"grpc-status", b"0"),
            Ok(1),
        ),
        // Both by index: blocks a client may remember.
        (vec![status_200, indexed(63)], vec![indexed(62)], Ok(2)),
        // grpc-status 14 inserted: 62 is now 14, 63 is 0, 64 the type.
        (
            vec![status_200, indexed(63)],
            inserting(0, b"grpc-status", b"14"),
            Err("grpc: Unavailable"),
        ),
        // The same trailers bytes as the second answer's, now meaning 14.
        (
            vec![status_200, indexed(64)],
            vec![indexed(62)],
            Err("grpc: Unavailable"),
        ),
    ];
    for (revision, (headers, trailers, expected)) in (1..).zip(answers) {
        let put = spawn_put(&conn, 1);
        let request = server.request().await;
        let mut out = Vec::new();
        put_block(&mut out, request.stream, frame::END_HEADERS, &headers);
        frame::put_frame(
            &mut out,
            frame::DATA,
            0,
            request.stream,
            &framed(&put_response(revision)),
        );
        put_block(
            &mut out,
            request.stream,
            frame::END_HEADERS | frame::END_STREAM,
            &trailers,
        );
        server.send(&out).await;
        let got = put
            .await
            .unwrap()
            .map(|answer| answer.header.unwrap().revision);
        assert_eq!(got, expected.map_err(OpError::new), "answer {revision}");
    }
}
