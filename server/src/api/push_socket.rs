//! `GET /v1/push`: the device's push WebSocket (see [`crate::push`]).

use axum::extract::State;
use axum::response::Response;

use super::{ApiError, AppState, Caller, current_user};
use crate::auth::Claims;

/// A push socket's read buffer.
const PUSH_BUFFER_BYTES: usize = 4 * 1024;
/// The largest message a phone may send on its push socket.
const PUSH_MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// `GET /v1/push`: the device's push WebSocket (see [`crate::push`]).
pub(super) async fn push(
    State(state): State<AppState>,
    Caller(claims): Caller,
    upgrade: Result<
        axum::extract::ws::WebSocketUpgrade,
        axum::extract::ws::rejection::WebSocketUpgradeRejection,
    >,
) -> Result<Response, ApiError> {
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::new(
            rejection.status(),
            "websocket_required",
            "/v1/push is a WebSocket: send a GET with Upgrade: websocket",
        )
    })?;
    let user = current_user(&state, &claims).await?;
    let scope = user.sync_scope();
    // An idle socket is most of what a node holds: tungstenite's default 128 KiB read
    // buffer, allocated up front, was 112 KiB per idle connection (docs/BENCHMARKS.md).
    // Notices are a few hundred bytes and the phone sends nothing but control frames.
    let upgrade = upgrade
        .read_buffer_size(PUSH_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_message_size(PUSH_MAX_MESSAGE_BYTES)
        .max_frame_size(PUSH_MAX_MESSAGE_BYTES);
    Ok(upgrade.on_upgrade(move |socket| push_socket(state, claims, scope, socket)))
}

async fn push_socket(
    state: AppState,
    claims: Claims,
    scope: wangge_sync_core::sync::UserScope,
    mut socket: axum::extract::ws::WebSocket,
) {
    use crate::push::Notice;
    use axum::extract::ws::{CloseFrame, Message};
    let send =
        |notice: &Notice| Message::Text(serde_json::to_string(notice).unwrap_or_default().into());
    let (id, mut notices) = state.push.register(&claims.act, scope);
    let hello = Notice::Hello {
        device: claims.dev.clone(),
    };
    let mut check = tokio::time::interval(state.push.check_every);
    if socket.send(send(&hello)).await.is_ok() {
        loop {
            tokio::select! {
                notice = notices.recv() => {
                    let Some(notice) = notice else { break };
                    if socket.send(send(&notice)).await.is_err() {
                        break;
                    }
                }
                incoming = socket.recv() => match incoming {
                    // Pings are answered by the WebSocket layer; the phone sends nothing else.
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
                _ = check.tick() => {
                    let revoked = match state.store.device(&claims.dev).await {
                        Ok(device) => device.is_none_or(|d| d.revoked_at.is_some()),
                        // The database is away: keep the socket, check again later.
                        Err(_) => false,
                    };
                    if revoked {
                        let _ = socket.send(send(&Notice::Revoked)).await;
                        let _ = socket
                            .send(Message::Close(Some(CloseFrame {
                                code: 4001,
                                reason: "device revoked".into(),
                            })))
                            .await;
                        break;
                    }
                }
            }
        }
    }
    state.push.unregister(id);
}
