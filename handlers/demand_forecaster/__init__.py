"""demand_forecaster: node demand forecasts per cluster, with calibrated confidence."""
