"""F9 (ease of use) and F12 (ecosystem footprint): measured rather than asserted.

Framework-free: code metrics parse the twins' source (``code_metrics``), the footprint reads the
installed distributions' metadata (``footprint``), and everything that runs a framework (planted
bugs, the custom-gradient twins, cold starts) runs in a child process that imports one framework
only (``child``, with the framework halves in ``fwstudy/frameworks/<name>/``)."""
