//! The HTTP client the S3 SDK sends its requests through: the host's own reqwest (rustls,
//! webpki roots), so S3 traffic shares one TLS stack and one set of trust roots with the
//! rest of the host instead of bringing the SDK's hyper client and the system's roots.

use aws_sdk_s3::config::http::{HttpRequest, HttpResponse};
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{HttpClient, RuntimeComponents};
use aws_sdk_s3::error::ConnectorError;
use aws_sdk_s3::primitives::SdkBody;
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};

/// Sends the SDK's requests with one reqwest client (one connection pool).
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    http: reqwest::Client,
}

impl ReqwestTransport {
    /// A client applying the connect and read timeouts of `timeouts`: the same config the
    /// SDK is given, so the settings it hands to [`HttpClient::http_connector`] are these.
    pub fn new(timeouts: &TimeoutConfig) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder()
            // A signed request answered with a redirect is the server's answer, not a hop
            // to follow: the signature names one host.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(connect) = timeouts.connect_timeout() {
            builder = builder.connect_timeout(connect);
        }
        if let Some(read) = timeouts.read_timeout() {
            builder = builder.read_timeout(read);
        }
        Ok(Self {
            http: builder.build()?,
        })
    }
}

impl HttpClient for ReqwestTransport {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

impl HttpConnector for ReqwestTransport {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let http = self.http.clone();
        HttpConnectorFuture::new(async move {
            let request = request
                .try_into_http1x()
                .map_err(|e| ConnectorError::user(e.into()))?
                .map(reqwest::Body::wrap);
            let request =
                reqwest::Request::try_from(request).map_err(|e| ConnectorError::user(e.into()))?;
            let response = http.execute(request).await.map_err(connector_error)?;
            let response = http::Response::from(response).map(SdkBody::from_body_1_x);
            HttpResponse::try_from(response).map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// Sorted the way the SDK reports failures: timeouts, then failures to reach the server.
fn connector_error(e: reqwest::Error) -> ConnectorError {
    if e.is_timeout() {
        ConnectorError::timeout(e.into())
    } else if e.is_builder() {
        ConnectorError::user(e.into())
    } else {
        ConnectorError::io(e.into())
    }
}
