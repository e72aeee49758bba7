"""Times neurokit2 (the peer) on the samples telediag's ecg_bench exported:
cleaning, R-peak detection and wave delineation, one lead (II, or MLII),
median of N runs. Prints one JSON line per file."""
import json, sys, time
import numpy as np
import neurokit2 as nk

runs = int(sys.argv[1])
for csv in sys.argv[2:]:
    rate = float(open(csv[:-4] + ".rate").read())
    header = open(csv).readline().strip().split(",")
    data = np.loadtxt(csv, delimiter=",", skiprows=1, ndmin=2)
    lead = "II" if "II" in header else ("MLII" if "MLII" in header else header[0])
    signal = data[:, header.index(lead)] / 1000.0  # mV
    timings = {"detect": [], "delineate": []}
    peaks = None
    for _ in range(runs):
        t = time.perf_counter()
        cleaned = nk.ecg_clean(signal, sampling_rate=int(rate))
        _, info = nk.ecg_peaks(cleaned, sampling_rate=int(rate))
        timings["detect"].append((time.perf_counter() - t) * 1000)
        peaks = info["ECG_R_Peaks"]
        t = time.perf_counter()
        nk.ecg_delineate(cleaned, peaks, sampling_rate=int(rate), method="dwt")
        timings["delineate"].append((time.perf_counter() - t) * 1000)
    med = {k: float(np.median(v)) for k, v in timings.items()}
    print(json.dumps({"file": csv, "lead": lead, "qrs": int(len(peaks)), "detect_ms": round(med["detect"], 1),
                      "delineate_ms": round(med["delineate"], 1), "total_ms": round(med["detect"] + med["delineate"], 1),
                      "neurokit2": nk.__version__}))
