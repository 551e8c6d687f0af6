"""demand_forecaster: node demand forecasts per cluster (double seasonal Holt-Winters)."""
