//! SaslHandshake and SaslAuthenticate on a listener without SASL (every
//! listener, until SASL is served): Kafka's `KafkaApis` answers both with
//! ILLEGAL_SASL_STATE and an empty mechanism list rather than closing the
//! connection, so a client configured for SASL fails with a clear error
//! instead of a dropped connection it would retry.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SaslAuthenticateResponse, SaslHandshakeResponse};
use kafka_protocol::protocol::StrBytes;

pub(crate) fn handshake() -> SaslHandshakeResponse {
    SaslHandshakeResponse::default().with_error_code(ResponseError::IllegalSaslState.code())
}

pub(crate) fn authenticate() -> SaslAuthenticateResponse {
    SaslAuthenticateResponse::default()
        .with_error_code(ResponseError::IllegalSaslState.code())
        .with_error_message(Some(StrBytes::from_static_str("this listener does not use SASL")))
}
