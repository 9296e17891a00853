"""Write-ahead log: accepted export requests are fsynced here before the client gets OK."""
