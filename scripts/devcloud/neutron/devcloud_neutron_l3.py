# devcloud's Neutron L3 service plugin: the stock router plugin, except that a
# floating IP's status follows its association at once.
#
# The stock plugin (service_plugins = router) creates floating IPs DOWN and
# leaves setting them ACTIVE to an L3 agent; devcloud runs none (its data plane
# forwards floating IPs instead), so every floating IP stayed DOWN. Clients that
# wait for ACTIVE after associating one then fail: CAPO gives the API load
# balancer's floating IP about 30 s, fails the reconcile, and when its next
# reconcile reads a cache that has not yet seen the address it recorded, it
# creates a second floating IP that Neutron refuses to associate with the same
# VIP port (409 FloatingIPPortAlreadyAssociated) for ever. Here, as with OVN's
# L3 plugin, an associated floating IP is ACTIVE and an unassociated one DOWN.
#
# Installed into Debian's site directory for local packages by
# scripts/devcloud/devcloud.sh install; selected by
# [DEFAULT] service_plugins = devcloud_neutron_l3.L3StatusRouterPlugin.

from neutron.objects import router as l3_obj
from neutron.services.l3_router import l3_router_plugin
from neutron_lib import constants


def _status(fip):
    if fip.get('port_id'):
        return constants.FLOATINGIP_STATUS_ACTIVE
    return constants.FLOATINGIP_STATUS_DOWN


class L3StatusRouterPlugin(l3_router_plugin.L3RouterPlugin):
    """L3RouterPlugin whose floating IPs are ACTIVE while associated."""

    # Neutron looks these up by the plugin's own class name: as the stock
    # plugin, native pagination and sorting, and the API's filter validation.
    __native_pagination_support = True
    __native_sorting_support = True
    __filter_validation_support = True

    def _set_status(self, context, fip):
        status = _status(fip)
        if fip.get('status') != status:
            self.update_floatingip_status(context, fip['id'], status)
            fip['status'] = status
        return fip

    def create_floatingip(self, context, floatingip):
        fip = super().create_floatingip(context, floatingip)
        return self._set_status(context, fip)

    def update_floatingip(self, context, id, floatingip):
        fip = super().update_floatingip(context, id, floatingip)
        return self._set_status(context, fip)

    def disassociate_floatingips(self, context, port_id, do_notify=True):
        ids = [f.id for f in l3_obj.FloatingIP.get_objects(
            context, fixed_port_id=port_id)]
        result = super().disassociate_floatingips(context, port_id, do_notify)
        for fip_id in ids:
            self.update_floatingip_status(
                context, fip_id, constants.FLOATINGIP_STATUS_DOWN)
        return result
