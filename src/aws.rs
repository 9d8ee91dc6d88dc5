//! What every AWS SDK client (S3, Batch) starts from: the shared config loader with the
//! HTTPS client on the process's one rustls provider (ring), an optional region and an
//! optional endpoint (a local server, S3-compatible storage).

use aws_config::{BehaviorVersion, ConfigLoader, Region};
use aws_sdk_s3::config::SharedHttpClient;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

/// The HTTPS client of the AWS clients: rustls with ring, HTTP/1.1 and HTTP/2. The SDK's
/// own default client is not built in (it would bring a second crypto library), so every
/// AWS client must be given this one.
pub fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// A config loader for an AWS client: region and endpoint when given, else the SDK's
/// usual chain (environment, profile, instance or task metadata).
pub fn loader(region: Option<&str>, endpoint: Option<&str>) -> ConfigLoader {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(https_client());
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_string()));
    }
    if let Some(e) = endpoint {
        loader = loader.endpoint_url(e);
    }
    loader
}
