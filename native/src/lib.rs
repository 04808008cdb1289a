//! marketlake's compiled order book (`marketlake_native.OrderBook`), behind `ingestors.book.OrderBook`.
//!
//! Every exchange adapter keeps its books in this class, so it is the hot path of the whole live side:
//! each depth frame sets a few to a few hundred levels and every consumer reads the best bid and ask.
//! Keys are exact decimals (`rust_decimal`, parsed from the exchange's strings, never floats), so
//! "0.35" and "0.35000000" are one level and no two distinct prices can collide; the exchange's own
//! strings are kept as Python `str` objects, byte for byte, because checksums (Kraken, OKX, Bitfinex)
//! and storage need them as sent. Levels go to Python as `ingestors.book.Level` named tuples, built
//! once per level on first read and reused until that level changes.

use std::collections::BTreeMap;

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyList, PyString, PyTuple};
use rust_decimal::Decimal;

create_exception!(
    marketlake_native,
    BookError,
    PyValueError,
    "A price or size that is not a decimal number, or a negative size."
);

/// The Python class levels are returned as (`ingestors.book.Level`), registered once by `use_level_type`.
static LEVEL_TYPE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

#[pyfunction]
fn use_level_type(py: Python<'_>, cls: Py<PyAny>) -> PyResult<()> {
    let _ = LEVEL_TYPE.set(py, cls);
    Ok(())
}

/// The exact value of an exchange decimal string ("123.45", "1e-5"); None if it is not a finite decimal that
/// fits 96 bits of mantissa and 28 decimal places (no exchange sends more: refusing beats rounding a key).
fn parse_decimal(text: &str) -> Option<Decimal> {
    match Decimal::from_str_exact(text) {
        Ok(value) => Some(value),
        Err(_) if text.contains(['e', 'E']) => Decimal::from_scientific(text).ok(),
        Err(_) => None,
    }
}

struct Entry {
    price: Py<PyString>,
    size: Py<PyString>,
    level: Option<Py<PyAny>>, // the Level tuple handed out for this level, until it changes
}

impl Entry {
    fn level(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if let Some(level) = &self.level {
            return Ok(level.clone_ref(py));
        }
        let cls = LEVEL_TYPE
            .get(py)
            .ok_or_else(|| PyValueError::new_err("marketlake_native: use_level_type(Level) was never called"))?;
        let level = cls.call1(py, (self.price.clone_ref(py), self.size.clone_ref(py)))?;
        self.level = Some(level.clone_ref(py));
        Ok(level)
    }
}

/// One read level: the side, its exact price key, and the exchange's strings (None: size 0, delete it).
type Change = (bool, Decimal, Option<(Py<PyString>, Py<PyString>)>);

type Side = BTreeMap<Decimal, Entry>;

/// Bids and asks of one instrument; `update_id` is the exchange sequence the book reflects (0 if none).
#[pyclass(module = "marketlake_native")]
struct OrderBook {
    #[pyo3(get, set)]
    ticker: String,
    /// Keep at most this many levels a side (the subscribed depth); None: all.
    #[pyo3(get, set)]
    depth_limit: Option<usize>,
    #[pyo3(get, set)]
    update_id: i64,
    bids: Side, // ascending: the best bid is the last key
    asks: Side, // ascending: the best ask is the first key
    dropped_bids: Vec<Entry>, // levels the depth limit dropped since the last apply (see `truncated`)
    dropped_asks: Vec<Entry>,
}

/// A level's price or size: only a str is one. Exchanges send decimal strings (adapters of exchanges that send JSON
/// numbers, HTX and Bitfinex, turn them into strings first), and a Level holds strings: a number here is a
/// malformed level, so levels the book accepted can be published as they are.
fn as_text<'py>(item: &Bound<'py, PyAny>) -> Option<Bound<'py, PyString>> {
    item.cast::<PyString>().ok().cloned()
}

impl OrderBook {
    fn malformed(&self, level: &Bound<'_, PyAny>) -> PyErr {
        let shown = level.repr().map(|r| r.to_string()).unwrap_or_else(|_| "?".into());
        BookError::new_err(format!("{}: malformed level {}", self.ticker, shown))
    }

    /// [price, size, ...] levels -> changes, all read before any is applied (a bad level leaves the book as it was).
    fn read_side(&self, is_bid: bool, levels: &Bound<'_, PyAny>, out: &mut Vec<Change>) -> PyResult<()> {
        if let Ok(list) = levels.cast::<PyList>() {
            for level in list.iter() {
                out.push(self.read_level(is_bid, &level)?);
            }
        } else if let Ok(tuple) = levels.cast::<PyTuple>() {
            for level in tuple.iter() {
                out.push(self.read_level(is_bid, &level)?);
            }
        } else {
            for level in levels.try_iter()? {
                out.push(self.read_level(is_bid, &level?)?);
            }
        }
        Ok(())
    }

    fn read_level(&self, is_bid: bool, level: &Bound<'_, PyAny>) -> PyResult<Change> {
        let (price, size) = if let Ok(list) = level.cast::<PyList>() {
            match (list.get_item(0), list.get_item(1)) {
                (Ok(p), Ok(s)) => (p, s),
                _ => return Err(self.malformed(level)),
            }
        } else if let Ok(tuple) = level.cast::<PyTuple>() {
            match (tuple.get_item(0), tuple.get_item(1)) {
                (Ok(p), Ok(s)) => (p, s),
                _ => return Err(self.malformed(level)),
            }
        } else if level.is_instance_of::<PyString>() {
            return Err(self.malformed(level));
        } else {
            match (level.get_item(0), level.get_item(1)) {
                (Ok(p), Ok(s)) => (p, s),
                _ => return Err(self.malformed(level)),
            }
        };
        let (Some(price), Some(size)) = (as_text(&price), as_text(&size)) else {
            return Err(self.malformed(level));
        };
        let key = self.number(&price, level)?;
        let amount = self.number(&size, level)?;
        if amount.is_sign_negative() && !amount.is_zero() {
            return Err(BookError::new_err(format!(
                "{}: negative size {} at price {}",
                self.ticker,
                size.repr()?,
                price.repr()?
            )));
        }
        let strings = if amount.is_zero() { None } else { Some((price.unbind(), size.unbind())) };
        Ok((is_bid, key, strings))
    }

    fn number(&self, text: &Bound<'_, PyString>, level: &Bound<'_, PyAny>) -> PyResult<Decimal> {
        let s = text.to_str()?;
        parse_decimal(s).ok_or_else(|| {
            // A number rust_decimal cannot hold exactly is refused, never rounded: two distinct prices must not merge.
            let what = if s.parse::<f64>().is_ok_and(f64::is_finite) {
                "a decimal number beyond 28 places or 96 bits of digits (refused, not rounded)"
            } else {
                "not a decimal number"
            };
            BookError::new_err(format!(
                "{}: {}: {} in level {}",
                self.ticker,
                what,
                text.repr().map(|r| r.to_string()).unwrap_or_default(),
                level.repr().map(|r| r.to_string()).unwrap_or_default()
            ))
        })
    }

    fn apply(&mut self, changes: Vec<Change>) {
        self.dropped_bids.clear();
        self.dropped_asks.clear();
        for (is_bid, key, strings) in changes {
            let side = if is_bid { &mut self.bids } else { &mut self.asks };
            match strings {
                None => {
                    side.remove(&key);
                }
                Some((price, size)) => match side.get_mut(&key) {
                    Some(entry) => {
                        entry.price = price;
                        entry.size = size;
                        entry.level = None;
                    }
                    None => {
                        side.insert(key, Entry { price, size, level: None });
                    }
                },
            }
        }
        if let Some(depth) = self.depth_limit {
            self.truncate(depth);
        }
    }

    fn levels<'a>(py: Python<'_>, entries: impl Iterator<Item = &'a mut Entry>, n: Option<usize>) -> PyResult<Vec<Py<PyAny>>> {
        let mut out = Vec::new();
        for entry in entries.take(n.unwrap_or(usize::MAX)) {
            out.push(entry.level(py)?);
        }
        Ok(out)
    }
}

#[pymethods]
impl OrderBook {
    #[new]
    #[pyo3(signature = (ticker, depth_limit=None))]
    fn new(ticker: String, depth_limit: Option<usize>) -> Self {
        OrderBook {
            ticker,
            depth_limit,
            update_id: 0,
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            dropped_bids: Vec::new(),
            dropped_asks: Vec::new(),
        }
    }

    /// Forget every level (before a resync) and the update id.
    fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
        self.dropped_bids.clear();
        self.dropped_asks.clear();
        self.update_id = 0;
    }

    /// Replace the whole book with the snapshot's levels ([price, size, ...] each) at update_id.
    /// All or nothing: a malformed level (BookError) leaves the book as it was.
    #[pyo3(signature = (bids, asks, update_id=0))]
    fn apply_snapshot(&mut self, bids: &Bound<'_, PyAny>, asks: &Bound<'_, PyAny>, update_id: i64) -> PyResult<()> {
        let mut changes = Vec::new();
        self.read_side(true, bids, &mut changes)?;
        self.read_side(false, asks, &mut changes)?;
        self.bids.clear();
        self.asks.clear();
        self.apply(changes);
        self.update_id = update_id;
        Ok(())
    }

    /// Set each level's size (size 0 removes the level), in order; returns how many levels were touched.
    /// All or nothing: every level is read first, so a malformed one (BookError) leaves the book as it was.
    fn apply_delta(&mut self, bids: &Bound<'_, PyAny>, asks: &Bound<'_, PyAny>) -> PyResult<usize> {
        let mut changes = Vec::new();
        self.read_side(true, bids, &mut changes)?;
        self.read_side(false, asks, &mut changes)?;
        let n = changes.len();
        self.apply(changes);
        Ok(n)
    }

    /// Set one level to the exchange's size string; a zero size deletes it (absent is fine).
    fn set_level(&mut self, py: Python<'_>, is_bid: bool, price: Py<PyAny>, size: Py<PyAny>) -> PyResult<()> {
        let level = PyTuple::new(py, [price, size])?;
        let change = self.read_level(is_bid, level.as_any())?;
        self.apply(vec![change]);
        Ok(())
    }

    /// Keep only the best `depth` levels of each side (Kraken: levels beyond the subscribed depth go).
    fn truncate(&mut self, depth: usize) {
        while self.bids.len() > depth {
            self.dropped_bids.extend(self.bids.pop_first().map(|(_, e)| e));
        }
        while self.asks.len() > depth {
            self.dropped_asks.extend(self.asks.pop_last().map(|(_, e)| e));
        }
    }

    /// (bids, asks) the depth limit dropped in the last apply_snapshot / apply_delta / set_level (and any truncate
    /// since), in the order they went: what a subscriber of deltas must delete too (Kraken truncates silently).
    fn truncated(&mut self, py: Python<'_>) -> PyResult<(Vec<Py<PyAny>>, Vec<Py<PyAny>>)> {
        Ok((Self::levels(py, self.dropped_bids.iter_mut(), None)?, Self::levels(py, self.dropped_asks.iter_mut(), None)?))
    }

    fn best_bid(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.bids.values_mut().next_back().map(|e| e.level(py)).transpose()
    }

    fn best_ask(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.asks.values_mut().next().map(|e| e.level(py)).transpose()
    }

    /// Best `n` bids (all if None), best first.
    #[pyo3(signature = (n=None))]
    fn bids(&mut self, py: Python<'_>, n: Option<usize>) -> PyResult<Vec<Py<PyAny>>> {
        Self::levels(py, self.bids.values_mut().rev(), n)
    }

    /// Best `n` asks (all if None), best first.
    #[pyo3(signature = (n=None))]
    fn asks(&mut self, py: Python<'_>, n: Option<usize>) -> PyResult<Vec<Py<PyAny>>> {
        Self::levels(py, self.asks.values_mut(), n)
    }

    /// (bids, asks): the best n levels of each side, best first.
    fn top(&mut self, py: Python<'_>, n: usize) -> PyResult<(Vec<Py<PyAny>>, Vec<Py<PyAny>>)> {
        Ok((self.bids(py, Some(n))?, self.asks(py, Some(n))?))
    }

    /// True when the best bid is at or above the best ask: no real exchange book looks like that.
    fn is_crossed(&self) -> bool {
        match (self.bids.keys().next_back(), self.asks.keys().next()) {
            (Some(bid), Some(ask)) => bid >= ask,
            _ => false,
        }
    }

    fn __len__(&self) -> usize {
        self.bids.len() + self.asks.len()
    }

    /// (number of bid levels, number of ask levels).
    fn depth(&self) -> (usize, usize) {
        (self.bids.len(), self.asks.len())
    }

    fn __repr__(&mut self, py: Python<'_>) -> PyResult<String> {
        let show = |level: Option<Py<PyAny>>| -> PyResult<String> {
            match level {
                Some(l) => Ok(l.bind(py).repr()?.to_string()),
                None => Ok("None".into()),
            }
        };
        let (bid, ask) = (self.best_bid(py)?, self.best_ask(py)?);
        Ok(format!(
            "OrderBook({:?}, update_id={}, bid={}, ask={}, levels=({}, {}))",
            self.ticker,
            self.update_id,
            show(bid)?,
            show(ask)?,
            self.bids.len(),
            self.asks.len()
        ))
    }
}

/// Kraken's checksum text of one string: the '.' removed and leading zeros stripped.
fn kraken_digits(text: &str, out: &mut Vec<u8>) {
    let mut leading = true;
    for &b in text.as_bytes() {
        if b == b'.' || (leading && b == b'0') {
            continue;
        }
        leading = false;
        out.push(b);
    }
}

/// Kraken's CRC32 (websocket v1) of the top `levels` asks (lowest first) then bids (highest first), each level its
/// price then its volume string with the '.' removed and leading zeros stripped; unsigned.
#[pyfunction]
fn kraken_checksum(py: Python<'_>, book: PyRef<'_, OrderBook>, levels: usize) -> PyResult<u32> {
    let mut text = Vec::with_capacity(levels * 40);
    for entry in book.asks.values().take(levels).chain(book.bids.values().rev().take(levels)) {
        kraken_digits(entry.price.bind(py).to_str()?, &mut text);
        kraken_digits(entry.size.bind(py).to_str()?, &mut text);
    }
    Ok(crc32fast::hash(&text))
}

/// OKX's CRC32 of the top `levels` bids and asks interleaved (bid1:ask1:bid2:...), each level "price:size" as OKX
/// sent them; signed 32-bit, as OKX sends it.
#[pyfunction]
fn okx_checksum(py: Python<'_>, book: PyRef<'_, OrderBook>, levels: usize) -> PyResult<i32> {
    let mut text = Vec::with_capacity(levels * 60);
    let mut bids = book.bids.values().rev().take(levels);
    let mut asks = book.asks.values().take(levels);
    loop {
        let (bid, ask) = (bids.next(), asks.next());
        if bid.is_none() && ask.is_none() {
            break;
        }
        for entry in [bid, ask].into_iter().flatten() {
            for s in [&entry.price, &entry.size] {
                if !text.is_empty() {
                    text.push(b':');
                }
                text.extend_from_slice(s.bind(py).to_str()?.as_bytes());
            }
        }
    }
    Ok(crc32fast::hash(&text) as i32)
}

#[pymodule]
fn marketlake_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<OrderBook>()?;
    m.add("BookError", m.py().get_type::<BookError>())?;
    m.add_function(wrap_pyfunction!(use_level_type, m)?)?;
    m.add_function(wrap_pyfunction!(kraken_checksum, m)?)?;
    m.add_function(wrap_pyfunction!(okx_checksum, m)?)?;
    Ok(())
}
