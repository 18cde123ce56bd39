# Sensors a device app can read. Portable: the simulated one runs anywhere; the hardware ones
# import `machine` (and `esp32`) only when chosen, so this module imports on CPython and the unix
# port. Each sensor has read() -> (value, unit).
import math
import sys

from microp2p.errors import UsageError

ADC_FULL_SCALE = 65535      # read_u16() range on every MicroPython port
ADC_VREF = 3.3              # volts at full scale (ESP32 with 11 dB attenuation, RP2040 ADC)
RP2_TEMP_ADC_CHANNEL = 4    # RP2040: the internal temperature sensor is ADC input 4
# RP2040 datasheet §4.9.5: T = 27 - (V_be - 0.706) / 0.001721
RP2_TEMP_V27 = 0.706
RP2_TEMP_SLOPE = 0.001721


class SimulatedSensor:
    """A slow temperature-like wave, deterministic in the reading number (tests can predict it)."""

    def __init__(self, cfg):
        self.base = float(cfg.get("base", 21.0))
        self.amplitude = float(cfg.get("amplitude", 2.5))
        self.n = 0

    def read(self):
        self.n += 1
        v = self.base + self.amplitude * math.sin(self.n / 8)
        return round(v, 3), "C"


class AdcSensor:
    """A voltage on an ADC pin (board.json: {"kind": "adc", "pin": 34})."""

    def __init__(self, cfg):
        import machine
        self.adc = machine.ADC(machine.Pin(int(cfg["pin"])))
        atten = getattr(machine.ADC, "ATTN_11DB", None)
        if atten is not None:  # ESP32: full 0-3.3 V range (the default tops out near 1 V)
            try:
                self.adc.atten(atten)
            except AttributeError:
                pass

    def read(self):
        return round(self.adc.read_u16() * ADC_VREF / ADC_FULL_SCALE, 4), "V"


class InternalTempSensor:
    """The chip's own temperature sensor: esp32 (raw_temperature in °F, or mcu_temperature in °C
    on newer chips) or rp2 (ADC channel 4)."""

    def __init__(self, cfg):
        self.kind = None
        if sys.platform == "rp2":
            import machine
            self.adc = machine.ADC(RP2_TEMP_ADC_CHANNEL)
            self.kind = "rp2"
        elif sys.platform == "esp32":
            import esp32
            self.esp32 = esp32
            self.kind = "esp32_mcu" if hasattr(esp32, "mcu_temperature") else "esp32_raw"
        else:
            raise UsageError("internal_temp: no temperature sensor on %s" % sys.platform)

    def read(self):
        if self.kind == "rp2":
            volts = self.adc.read_u16() * ADC_VREF / ADC_FULL_SCALE
            return round(27 - (volts - RP2_TEMP_V27) / RP2_TEMP_SLOPE, 2), "C"
        if self.kind == "esp32_mcu":
            return round(float(self.esp32.mcu_temperature()), 2), "C"
        return round((self.esp32.raw_temperature() - 32) / 1.8, 2), "C"


KINDS = {"simulated": SimulatedSensor, "adc": AdcSensor, "internal_temp": InternalTempSensor}


def make(cfg):
    cfg = cfg or {"kind": "simulated"}
    cls = KINDS.get(cfg.get("kind", "simulated"))
    if cls is None:
        raise UsageError("unknown sensor kind %r" % cfg.get("kind"))
    return cls(cfg)
