"""Shadow Network Generator and the emulation lab (Mininet, Open vSwitch)."""
