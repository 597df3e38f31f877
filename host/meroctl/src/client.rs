//! A small client of the node's HTTP API.

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// What went wrong talking to the node.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// The node did not answer.
    #[error("cannot reach the node at {url}: {source}. Is it running (`merod --node <NAME> run`)?")]
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
    #[error("unexpected answer from the node: {0}")]
    Unexpected(String),
    /// The command line was wrong.
    #[error("{0}")]
    Usage(String),
}

pub(crate) struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    pub(crate) fn new(base: &str) -> Result<Client, ClientError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|e| ClientError::Unexpected(e.to_string()))?;
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            http,
        })
    }

    /// The node's base URL.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request; returns the JSON body of a success.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url);
        if let Some(body) = body {
            req = req.json(body);
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
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            return Ok(value);
        }
        let message = value
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| value.to_string());
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("Error")
            .to_string();
        Err(ClientError::Api {
            status,
            kind,
            message,
        })
    }

    pub(crate) async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.send(Method::GET, path, None::<&()>).await
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<Value, ClientError> {
        self.send(Method::POST, path, Some(body)).await
    }

    pub(crate) async fn put(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<Value, ClientError> {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub(crate) async fn delete(&self, path: &str) -> Result<Value, ClientError> {
        self.send(Method::DELETE, path, Some(&serde_json::json!({})))
            .await
    }
}

/// Decodes `value["data"]` (or the whole value) as `T`.
pub(crate) fn data<T: DeserializeOwned>(value: &Value) -> Result<T, ClientError> {
    let inner = value.get("data").unwrap_or(value);
    serde_json::from_value(inner.clone())
        .map_err(|e| ClientError::Unexpected(format!("{e}: {value}")))
}
