"""bh-fhir-adapter: behavioral-health records to HL7 FHIR R4, protected and synced."""

__version__ = "0.1.0"
