//! A small client of the node's HTTP API: sends `mero-api` requests and
//! decodes the answers into `mero-api` types; a refusal becomes
//! [`ClientError::Api`] with the server's error kind and message.

use mero_api::ErrorBody;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What went wrong talking to the node (or before that, on the command line).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// The node did not answer.
    #[error("cannot reach the node at {url}. Is it running (`merod --node <NAME> run`)?")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The node answered with an error.
    #[error("{message} ({kind}, HTTP {status})")]
    Api {
        status: StatusCode,
        kind: String,
        message: String,
    },
    /// The app call failed.
    #[error("the call failed: {message} ({kind})")]
    Call { kind: String, message: String },
    /// The answer was not what the API promises.
    #[error("unexpected answer from the node to {what}: {body}")]
    Decode {
        what: String,
        body: String,
        #[source]
        source: serde_json::Error,
    },
    /// The node's WebSocket failed.
    #[error("the WebSocket at {url} failed")]
    Socket {
        url: String,
        #[source]
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
    /// Something else went wrong on the way.
    #[error("unexpected answer from the node: {0}")]
    Unexpected(String),
    /// The node's configuration could not be read.
    #[error("cannot read the configuration of node `{node}`")]
    Config {
        node: String,
        #[source]
        source: mero_config::ConfigError,
    },
    /// Printing the answer failed.
    #[error("cannot print the answer")]
    Print(#[source] std::io::Error),
    /// The answer could not be rendered as JSON.
    #[error("cannot render the answer as JSON")]
    Render(#[source] serde_json::Error),
    /// Reading standard input failed.
    #[error("cannot read standard input")]
    Stdin(#[source] std::io::Error),
    /// The command line was wrong.
    #[error("{0}")]
    Usage(String),
    /// A workflow did not pass.
    #[error(transparent)]
    Workflow(Box<crate::workflow::WorkflowError>),
}

impl From<crate::workflow::WorkflowError> for ClientError {
    fn from(e: crate::workflow::WorkflowError) -> Self {
        ClientError::Workflow(Box::new(e))
    }
}

/// A request without a body still sends `{}`: the node reads JSON bodies.
#[derive(Serialize)]
pub(crate) struct NoBody {}

pub(crate) struct Client {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Client {
    /// A client of the node at `base`, sending `token` as its bearer token.
    pub(crate) fn new(base: &str, token: Option<String>) -> Result<Client, ClientError> {
        Client::bounded(base, token, None)
    }

    /// A client whose every request (connecting, sending, reading the
    /// answer) gives up after `timeout`: a node frozen with SIGSTOP
    /// accepts connections and never answers.
    pub(crate) fn bounded(
        base: &str,
        token: Option<String>,
        timeout: Option<std::time::Duration>,
    ) -> Result<Client, ClientError> {
        let mut builder = reqwest::Client::builder().no_proxy();
        if let Some(t) = timeout {
            builder = builder.timeout(t);
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Unexpected(e.to_string()))?;
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            http,
            token,
        })
    }

    /// The node's base URL.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// The bearer token, if any.
    pub(crate) fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Uploads `bytes` as the body of a POST (`content_type` says what they are).
    pub(crate) async fn post_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<T, ClientError> {
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(bytes);
        self.finish(format!("POST {path}"), req).await
    }

    /// Uploads `bytes` as the body of a PUT, as `application/octet-stream`.
    pub(crate) async fn put_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        bytes: Vec<u8>,
    ) -> Result<T, ClientError> {
        let req = self
            .http
            .put(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes);
        self.finish(format!("PUT {path}"), req).await
    }

    /// Sends `req` with the bearer token; a refusal is an error.
    async fn success(
        &self,
        mut req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: self.base.clone(),
                source,
            })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = resp.text().await.unwrap_or_default();
        Err(refusal(status, &text))
    }

    /// The headers a HEAD request answers.
    pub(crate) async fn head(&self, path: &str) -> Result<reqwest::header::HeaderMap, ClientError> {
        let req = self.http.head(format!("{}{path}", self.base));
        Ok(self.success(req).await?.headers().clone())
    }

    /// Streams a GET's body into `sink`; returns the bytes written.
    pub(crate) async fn download(
        &self,
        path: &str,
        sink: &mut (impl tokio::io::AsyncWrite + Unpin),
    ) -> Result<u64, ClientError> {
        use tokio::io::AsyncWriteExt as _;
        let req = self.http.get(format!("{}{path}", self.base));
        let mut resp = self.success(req).await?;
        let mut written = 0u64;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| ClientError::Unexpected(format!("the download broke off: {e}")))?
        {
            sink.write_all(&chunk).await.map_err(ClientError::Print)?;
            written += chunk.len() as u64;
        }
        sink.flush().await.map_err(ClientError::Print)?;
        Ok(written)
    }

    /// Sends a request; decodes the body of a success as `T`.
    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let what = format!("{method} {path}");
        let mut req = self.http.request(method, &url);
        if let Some(body) = body {
            req = req.json(body);
        }
        self.finish(what, req).await
    }

    /// Sends `req` with the bearer token; decodes a success as `T`.
    async fn finish<T: DeserializeOwned>(
        &self,
        what: String,
        mut req: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: self.base.clone(),
                source,
            })?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| ClientError::Unexpected(e.to_string()))?;
        if !status.is_success() {
            return Err(refusal(status, &text));
        }
        serde_json::from_str(&text).map_err(|source| ClientError::Decode {
            what,
            body: text,
            source,
        })
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(Method::GET, path, None::<&()>).await
    }

    pub(crate) async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, ClientError> {
        self.send(Method::POST, path, Some(body)).await
    }

    pub(crate) async fn put<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, ClientError> {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub(crate) async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(Method::DELETE, path, Some(&NoBody {})).await
    }
}

/// The error of a refused request: the server's [`ErrorBody`], or the body
/// itself when something in front of the API answered (e.g. an unknown route).
fn refusal(status: StatusCode, text: &str) -> ClientError {
    match serde_json::from_str::<ErrorBody>(text) {
        Ok(body) => ClientError::Api {
            status,
            kind: body.kind,
            message: body.error,
        },
        Err(_) => ClientError::Api {
            status,
            kind: "Error".into(),
            message: text.trim().to_string(),
        },
    }
}

/// The hint to add to a 401: where a token comes from.
pub(crate) fn unauthenticated_hint(e: ClientError) -> ClientError {
    match e {
        ClientError::Api {
            status: StatusCode::UNAUTHORIZED,
            kind,
            message,
        } => ClientError::Api {
            status: StatusCode::UNAUTHORIZED,
            kind,
            message: format!(
                "{message}. Use --node <NAME> (its root credential is read from \
                 <home>/<NAME>/credential.json) or --token / MEROCTL_TOKEN"
            ),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_keep_the_servers_kind_and_message() {
        let e = refusal(
            StatusCode::NOT_FOUND,
            r#"{"error":"Application not found","type":"ApplicationNotFound"}"#,
        );
        assert_eq!(
            e.to_string(),
            "Application not found (ApplicationNotFound, HTTP 404 Not Found)"
        );
        let e = refusal(StatusCode::METHOD_NOT_ALLOWED, "nope\n");
        assert_eq!(e.to_string(), "nope (Error, HTTP 405 Method Not Allowed)");
    }
}
