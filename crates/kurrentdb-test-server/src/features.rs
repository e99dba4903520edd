//! `event_store.client.server_features.ServerFeatures`, which the client calls
//! on connecting to learn the server version and which optional methods (batch
//! append among them) it may use.

use tonic::{Request, Response, Status};

use crate::proto::event_store::client::server_features::{
    server_features_server, SupportedMethod, SupportedMethods,
};
use crate::proto::event_store::client::Empty;

/// A real 24.10 LTS answers this version; the client only looks at its digits.
pub const SERVER_VERSION: &str = "24.10.0";

const STREAMS: &str = "event_store.client.streams.streams";
const SERVER_FEATURES: &str = "event_store.client.server_features.serverfeatures";

/// The methods this server implements, with the features the server lists for
/// them (service and method names lowercased, as the server sends them).
fn supported_methods() -> Vec<SupportedMethod> {
    let method = |service: &str, name: &str, features: &[&str]| SupportedMethod {
        method_name: name.to_owned(),
        service_name: service.to_owned(),
        features: features.iter().map(|f| (*f).to_owned()).collect(),
    };
    vec![
        method(STREAMS, "read", &["position", "events"]),
        method(STREAMS, "append", &[]),
        method(STREAMS, "delete", &[]),
        method(STREAMS, "tombstone", &[]),
        method(STREAMS, "batchappend", &["deadline_duration"]),
        method(SERVER_FEATURES, "getsupportedmethods", &[]),
    ]
}

/// The `ServerFeatures` service.
#[derive(Debug, Default)]
pub(crate) struct Features;

#[tonic::async_trait]
impl server_features_server::ServerFeatures for Features {
    async fn get_supported_methods(
        &self,
        _: Request<Empty>,
    ) -> Result<Response<SupportedMethods>, Status> {
        Ok(Response::new(SupportedMethods {
            methods: supported_methods(),
            event_store_server_version: SERVER_VERSION.to_owned(),
        }))
    }
}
