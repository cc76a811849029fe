//! JSON bodies for the error responses hyper writes on its own.
//!
//! A request hyper cannot parse (garbage on the wire: 400, a URI over the
//! `http` crate's 64 KiB limit: 414, headers over the buffer limit: 431)
//! never reaches the router, so [`super::error::json_errors`] cannot give it
//! the `{"error": "..."}` body every Studio error has (README "Ferrum Studio");
//! hyper sends the status line with an empty body and closes the
//! connection. [`JsonErrorIo`] wraps the connection's socket and rewrites
//! exactly those responses as they are written: a whole response head with
//! a 4xx/5xx status and `content-length: 0`. The router's own error
//! responses always carry a JSON body, so they never match.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A socket whose bare error responses get a JSON body.
#[derive(Debug)]
pub(crate) struct JsonErrorIo<T> {
    inner: T,
    /// A rewritten response still being written, and how much of it is out.
    pending: Option<(Vec<u8>, usize)>,
}

impl<T> JsonErrorIo<T> {
    pub fn new(inner: T) -> Self {
        JsonErrorIo {
            inner,
            pending: None,
        }
    }
}

/// The message for a status hyper produces by itself.
fn message(status: u16) -> &'static str {
    match status {
        400 => "the request is not valid HTTP/1.1",
        414 => {
            "the request URI is longer than Studio accepts (64 KiB); a key that long \
             cannot be opened in Studio: read or change it from Python or the REPL"
        }
        431 => "the request headers are larger than Studio accepts",
        _ => "the request could not be read",
    }
}

/// `buf` rewritten with a JSON body when it is exactly one bare error
/// response head (status 4xx/5xx, `content-length: 0`); `None` otherwise.
fn rewrite(buf: &[u8]) -> Option<Vec<u8>> {
    let rest = buf.strip_prefix(b"HTTP/1.1 ")?;
    if !matches!(rest.first(), Some(b'4' | b'5')) || !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    let head_len = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    if head_len != buf.len() {
        return None;
    }
    let status: u16 = std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()?;
    let head = std::str::from_utf8(buf).ok()?;
    let zero = head
        .find("\r\ncontent-length: 0\r\n")
        .or_else(|| head.find("\r\nContent-Length: 0\r\n"))?;
    let body = serde_json::json!({ "error": message(status) }).to_string();
    let mut out = Vec::with_capacity(buf.len() + body.len() + 64);
    out.extend_from_slice(&buf[..zero]);
    out.extend_from_slice(
        format!(
            "\r\ncontent-type: application/json\r\ncontent-length: {}",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&buf[zero + "\r\ncontent-length: 0".len()..]);
    out.extend_from_slice(body.as_bytes());
    Some(out)
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonErrorIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonErrorIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_none() {
            match rewrite(buf) {
                Some(bytes) => this.pending = Some((bytes, 0)),
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        // Write the whole rewritten response before reporting `buf` as
        // written; until then hyper calls again with the same `buf`.
        if let Some((bytes, done)) = &mut this.pending {
            while *done < bytes.len() {
                match Pin::new(&mut this.inner).poll_write(cx, &bytes[*done..]) {
                    Poll::Ready(Ok(0)) => {
                        this.pending = None;
                        return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                    }
                    Poll::Ready(Ok(n)) => *done += n,
                    Poll::Ready(Err(e)) => {
                        this.pending = None;
                        return Poll::Ready(Err(e));
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
        }
        this.pending = None;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    // Not vectored: hyper then hands over each response as one contiguous
    // buffer, which is what `rewrite` inspects.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_error_heads_get_a_json_body() {
        let head = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(rewrite(head).unwrap()).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        assert!(head.ends_with("date: x"), "{head}");
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(v["error"].as_str().unwrap().contains("64 KiB"));
    }

    #[test]
    fn other_writes_pass_untouched() {
        for buf in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 12\r\n\r\n{\"error\":1}",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nextra\r\n\r\n",
            b"{\"a\": \"HTTP/1.1 400 x\r\ncontent-length: 0\r\n\r\n\"}",
        ] {
            assert_eq!(rewrite(buf), None, "{}", String::from_utf8_lossy(buf));
        }
    }
}
