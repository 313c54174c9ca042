"""What more than one test module uses: real servers, runs, pictures and checks, each module
named for what it serves. Fixtures stay in tests/conftest.py, which reaches every folder."""
