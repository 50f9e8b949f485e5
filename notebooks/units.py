"""Unit conversions used by the analysis notebook (a module the notebook imports)."""


def to_celsius(value: float, unit: str) -> float:
    """Convert a temperature reading to degrees Celsius."""
    if unit == "C":
        return value
    if unit == "F":
        return (value - 32) * 5 / 9
    if unit == "K":
        return value - 273.15
    raise ValueError(f"unknown unit {unit!r}")


def to_kmh(value: float, unit: str) -> float:
    """Convert a wind speed to km/h."""
    factors = {"kmh": 1.0, "ms": 3.6, "mph": 1.609344}
    try:
        return value * factors[unit]
    except KeyError:
        raise ValueError(f"unknown speed unit {unit!r}") from None
