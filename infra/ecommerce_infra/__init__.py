"""The CDK app that provisions the ``aws`` deployment of the ecommerce platform."""
