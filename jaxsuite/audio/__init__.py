"""Speech front end: eSpeak NG (synthesis and G2P) and filterbank features with SpecAugment."""
