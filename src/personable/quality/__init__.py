"""Data quality: standardization, missing values, validation rules, reports."""
