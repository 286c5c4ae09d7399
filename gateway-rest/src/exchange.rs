//! The one rule converting upstream costs (providers bill in US dollars; llm-gateway counts
//! nano-dollars) to integer dinars at the configured `USD_DZD_RATE`.

/// Dinars for `nano_usd` (1e-9 USD) at `rate_milli` thousandths of a dinar per dollar, **rounded
/// up** to the dinar: a cost is never shown below what it was, so a margin is never overstated.
/// A negative amount (never produced by llm-gateway) counts as 0.
pub fn nano_usd_to_dzd_ceil(nano_usd: i64, rate_milli: u64) -> u64 {
    let Ok(nano) = u128::try_from(nano_usd) else {
        return 0;
    };
    // nano-dollars × thousandths of a dinar per dollar = 1e-12 dinars.
    let pico_dzd = nano.saturating_mul(u128::from(rate_milli));
    u64::try_from(pico_dzd.div_ceil(1_000_000_000_000)).unwrap_or(u64::MAX)
}

/// Dollars from nano-dollars, for display.
pub fn usd(nano_usd: i64) -> f64 {
    nano_usd as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_round_up_to_the_dinar() {
        assert_eq!(nano_usd_to_dzd_ceil(0, 135_000), 0);
        // One dollar at 135.5 is 135.5 dinars: 136.
        assert_eq!(nano_usd_to_dzd_ceil(1_000_000_000, 135_500), 136);
        // Exactly 135 dinars stays 135.
        assert_eq!(nano_usd_to_dzd_ceil(1_000_000_000, 135_000), 135);
        // A millionth of a dollar is still one dinar.
        assert_eq!(nano_usd_to_dzd_ceil(1_000, 135_000), 1);
        assert_eq!(nano_usd_to_dzd_ceil(-5, 135_000), 0);
        assert_eq!(
            nano_usd_to_dzd_ceil(i64::MAX, 100_000_000),
            922_337_203_685_478
        );
    }
}
