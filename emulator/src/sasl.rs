//! SASL: offer `MSSBCBS`, `ANONYMOUS` and `PLAIN` and accept any of them. Authorization is
//! done (permissively) by `$cbs` put-token, as on the service; the emulator accepts any
//! credentials, like Microsoft's emulator with `SAS_KEY_VALUE`.

use fe2o3_amqp::acceptor::sasl_acceptor::{SaslAcceptor, SaslServerFrame};
use fe2o3_amqp_types::{
    primitives::{Array, Symbol},
    sasl::{SaslCode, SaslInit, SaslOutcome, SaslResponse},
};

/// Mechanisms offered, in this order.
pub const MECHANISMS: [&str; 3] = ["MSSBCBS", "ANONYMOUS", "PLAIN"];

/// Permissive SASL acceptor.
#[derive(Debug, Clone, Default)]
pub struct PermissiveSasl;

impl SaslAcceptor for PermissiveSasl {
    fn mechanisms(&self) -> Array<Symbol> {
        Array::from(
            MECHANISMS
                .iter()
                .map(|m| Symbol::from(*m))
                .collect::<Vec<_>>(),
        )
    }

    fn on_init(&mut self, init: SaslInit) -> SaslServerFrame {
        let known = MECHANISMS
            .iter()
            .any(|m| m.eq_ignore_ascii_case(init.mechanism.as_str()));
        tracing::debug!(mechanism = %init.mechanism.as_str(), known, "sasl init");
        SaslServerFrame::Outcome(SaslOutcome {
            code: if known { SaslCode::Ok } else { SaslCode::Auth },
            additional_data: None,
        })
    }

    fn on_response(&mut self, _response: SaslResponse) -> SaslServerFrame {
        SaslServerFrame::Outcome(SaslOutcome {
            code: SaslCode::Ok,
            additional_data: None,
        })
    }
}
