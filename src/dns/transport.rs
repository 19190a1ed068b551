//! How a query arrived, shared by the handler, the answer cache and the listeners.

/// How a query arrived: sets the response size limit and the metrics label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    /// DNS over HTTPS and the HTTPDNS APIs: no size limit beyond the DNS message's.
    Https,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Https => "https",
        }
    }
}
