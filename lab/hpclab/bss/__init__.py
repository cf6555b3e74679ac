"""A faithful double of OpenCHAMI's Boot Script Service (etcd and PostgreSQL modes); see docs/lab-doubles.md."""
