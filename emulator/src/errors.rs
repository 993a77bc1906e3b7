//! AMQP error values the emulator sends, with the conditions Event Hubs uses.

use fe2o3_amqp_types::{
    definitions::{AmqpError, Error, ErrorCondition, LinkError},
    primitives::Symbol,
};

use crate::{broker::LookupError, filter::FilterError, readers::ReaderRejected};

/// `com.microsoft:argument-error` (bad filter and other bad arguments).
pub const ARGUMENT_ERROR: &str = "com.microsoft:argument-error";
/// `com.microsoft:argument-out-of-range` (partition id out of range).
pub const ARGUMENT_OUT_OF_RANGE: &str = "com.microsoft:argument-out-of-range";

fn error(condition: impl Into<ErrorCondition>, description: String) -> Error {
    Error::new(condition, Some(description), None)
}

/// Error for a failed hub / partition / consumer group lookup.
pub fn lookup(err: &LookupError) -> Error {
    match err {
        LookupError::PartitionNotFound { .. } => error(
            ErrorCondition::Custom(Symbol::from(ARGUMENT_OUT_OF_RANGE)),
            err.to_string(),
        ),
        _ => error(AmqpError::NotFound, err.to_string()),
    }
}

/// Error for an unknown link address.
pub fn unknown_address(address: &str) -> Error {
    error(
        AmqpError::NotFound,
        format!("The messaging entity '{address}' could not be found."),
    )
}

/// Error for an unparsable selector filter.
pub fn bad_filter(err: &FilterError) -> Error {
    error(
        ErrorCondition::Custom(Symbol::from(ARGUMENT_ERROR)),
        err.to_string(),
    )
}

/// Error for a receiver refused by the epoch / quota rules.
pub fn reader_rejected(err: &ReaderRejected) -> Error {
    match err {
        ReaderRejected::HigherEpochExists {
            existing,
            requested: Some(e),
        } => error(
            LinkError::Stolen,
            format!(
                "Receiver 'with epoch {e}' cannot be created because a receiver with higher \
                 epoch '{existing}' already exists."
            ),
        ),
        ReaderRejected::HigherEpochExists {
            existing,
            requested: None,
        } => error(
            LinkError::Stolen,
            format!(
                "A receiver with epoch '{existing}' already exists; a non-epoch receiver cannot \
                 be created."
            ),
        ),
        ReaderRejected::QuotaExceeded => error(
            AmqpError::ResourceLimitExceeded,
            format!(
                "Exceeded the maximum number of allowed receivers per partition in a consumer \
                 group which is {}.",
                crate::readers::MAX_NON_EPOCH_READERS
            ),
        ),
    }
}

/// Error for a receiver replaced by a higher owner level.
pub fn stolen(description: String) -> Error {
    error(LinkError::Stolen, description)
}

/// Error for a message over the size limit.
pub fn message_too_large(size: u64, limit: u64) -> Error {
    error(
        LinkError::MessageSizeExceeded,
        format!(
            "The received message (size: {size} bytes) exceeds the limit ({limit} bytes) \
             currently allowed on the link."
        ),
    )
}

/// Error for a message that cannot be processed (undecodable batch, etc.).
pub fn bad_message(description: String) -> Error {
    error(AmqpError::DecodeError, description)
}

/// Error for a transfer a producer link cannot accept.
pub fn bad_transfer(err: &fe2o3_amqp::link::RecvError) -> Error {
    use fe2o3_amqp::link::RecvError;
    match err {
        // A delivery whose frames disagree on delivery-id / tag / format. fe2o3 0.16 clients
        // produce exactly this when a message exceeds the link's max-message-size (they cut it
        // into several deliveries instead of refusing it).
        RecvError::InconsistentFieldInMultiFrameDelivery => error(
            LinkError::MessageSizeExceeded,
            format!(
                "Inconsistent transfer fields in a multi-frame delivery (a message larger than \
                 the {} bytes allowed on the link, split into several deliveries?)",
                crate::config::MAX_MESSAGE_SIZE
            ),
        ),
        RecvError::MessageDecode(e) => {
            error(AmqpError::DecodeError, format!("Undecodable message: {e}"))
        }
        other => error(AmqpError::NotAllowed, format!("Invalid transfer: {other}")),
    }
}

/// Internal failure (e.g. data dir write error).
pub fn internal(description: String) -> Error {
    error(AmqpError::InternalError, description)
}
